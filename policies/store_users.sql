-- store_users: which members are linked to which store of their tenant.
--
-- Tenant-scoped: a request sees and writes only the rows of the tenant in
-- app.tenant_id. No context (or an empty one) means no rows and no writes.
ALTER TABLE public.store_users ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.store_users FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.store_users;
CREATE POLICY tenant_isolation ON public.store_users
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
