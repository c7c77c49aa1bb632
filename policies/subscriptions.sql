-- subscriptions: one per tenant, the plan it is on and where its period stands.
-- Tenant-scoped: a request sees and writes only its own tenant's subscription.
ALTER TABLE public.subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.subscriptions FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.subscriptions;
CREATE POLICY tenant_isolation ON public.subscriptions
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
