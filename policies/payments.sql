-- payments: a tenant's M-Pesa payment attempts.
-- Tenant-scoped: a request, the callback (in the context of the payment's tenant,
-- found by app.payment_tenant) and the reconciliation job see only their tenant's rows.
ALTER TABLE public.payments ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.payments FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.payments;
CREATE POLICY tenant_isolation ON public.payments
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
