-- invoice_counters: each tenant's last invoice number (gapless numbering).
-- Tenant-scoped: issuing an invoice bumps its own tenant's counter only, so no tenant
-- can learn, skip or take another's numbers.
ALTER TABLE public.invoice_counters ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.invoice_counters FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.invoice_counters;
CREATE POLICY tenant_isolation ON public.invoice_counters
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
