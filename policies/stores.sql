-- stores: the branches of a tenant.
--
-- Tenant-scoped: a request sees and writes only the rows of the tenant in
-- app.tenant_id. No context (or an empty one) means no rows and no writes.
ALTER TABLE public.stores ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.stores FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.stores;
CREATE POLICY tenant_isolation ON public.stores
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
