-- usage_metrics: each limit's count and maximum in a period, as the aggregation last
-- recorded them (the usage history).
-- Tenant-scoped: read and recorded only in the tenant's own context.
ALTER TABLE public.usage_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.usage_metrics FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.usage_metrics;
CREATE POLICY tenant_isolation ON public.usage_metrics
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
