-- usage_periods: a tenant's usage per subscription period (its api_requests, added by
-- the servers' flushes through app.record_api_requests).
-- Tenant-scoped: a request sees only its own tenant's periods; the aggregation opens
-- a period only for the tenant of its context.
ALTER TABLE public.usage_periods ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.usage_periods FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.usage_periods;
CREATE POLICY tenant_isolation ON public.usage_periods
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
