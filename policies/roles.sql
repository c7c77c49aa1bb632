-- roles: a tenant's roles, the system ones (Owner, Admin, Store Manager, Staff) and
-- its own.
--
-- Tenant-scoped: a request sees and writes only the rows of the tenant in
-- app.tenant_id. No context (or an empty one) means no rows and no writes.
ALTER TABLE public.roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.roles FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.roles;
CREATE POLICY tenant_isolation ON public.roles
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
