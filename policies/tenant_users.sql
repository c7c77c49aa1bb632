-- tenant_users: who is a member of a tenant, and whether the membership is active.
--
-- Tenant-scoped: a request sees and writes only the rows of the tenant in
-- app.tenant_id. No context (or an empty one) means no rows and no writes.
ALTER TABLE public.tenant_users ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.tenant_users FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.tenant_users;
CREATE POLICY tenant_isolation ON public.tenant_users
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
