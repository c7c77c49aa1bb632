-- usage_thresholds: the 80% and 100% notices sent to a tenant's Owners, one per
-- period, limit and threshold (the key that keeps them from going out twice).
-- Tenant-scoped: a tenant's notices neither show in nor hold back another's.
ALTER TABLE public.usage_thresholds ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.usage_thresholds FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.usage_thresholds;
CREATE POLICY tenant_isolation ON public.usage_thresholds
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
