-- invoice_lines: what an invoice charges for, line by line.
-- Tenant-scoped like the invoice they belong to (the composite foreign key keeps a
-- line in its invoice's tenant).
ALTER TABLE public.invoice_lines ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.invoice_lines FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.invoice_lines;
CREATE POLICY tenant_isolation ON public.invoice_lines
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
