-- payment_callbacks: the callbacks Daraja posted about a tenant's payments, raw.
-- Tenant-scoped: a request, the callback (in the context of the payment's tenant,
-- found by app.payment_tenant) and the reconciliation job see only their tenant's rows.
ALTER TABLE public.payment_callbacks ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.payment_callbacks FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.payment_callbacks;
CREATE POLICY tenant_isolation ON public.payment_callbacks
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
