-- role_permissions: which permissions each role of a tenant holds.
--
-- Tenant-scoped: a request sees and writes only the rows of the tenant in
-- app.tenant_id. No context (or an empty one) means no rows and no writes.
ALTER TABLE public.role_permissions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.role_permissions FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.role_permissions;
CREATE POLICY tenant_isolation ON public.role_permissions
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
