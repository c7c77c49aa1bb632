-- invoices: what a tenant owes or paid, one per period invoiced.
-- Tenant-scoped: a request (and the renewal job, which runs in the tenant's context)
-- sees and writes only its own tenant's invoices; another tenant's is a 404.
ALTER TABLE public.invoices ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.invoices FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.invoices;
CREATE POLICY tenant_isolation ON public.invoices
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
