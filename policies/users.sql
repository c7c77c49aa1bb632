-- users: the global identity table (a user can belong to several tenants), so it has
-- no tenant_id. A request sees the acting user and the members of its own tenant,
-- never the users of other tenants, and changes only its own profile (the runtime
-- role may update only full_name and updated_at). Users are created by the identity
-- service's definer functions, so there is no INSERT or DELETE policy: both are denied.
ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.users FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS users_visible ON public.users;
CREATE POLICY users_visible ON public.users FOR SELECT
    USING (id = (SELECT app.current_user_id())
           OR EXISTS (SELECT 1 FROM public.tenant_users AS tu
                      WHERE tu.tenant_id = (SELECT app.current_tenant_id())
                        AND tu.user_id = users.id));

DROP POLICY IF EXISTS users_update_self ON public.users;
CREATE POLICY users_update_self ON public.users FOR UPDATE
    USING (id = (SELECT app.current_user_id()))
    WITH CHECK (id = (SELECT app.current_user_id()));
