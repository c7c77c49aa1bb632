-- audit_events: who changed what, per tenant. Tenant-scoped: a request reads and
-- appends only its own tenant's events. The runtime role has no UPDATE or DELETE
-- grant: the trail is append-only.
ALTER TABLE public.audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_events FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.audit_events;
CREATE POLICY tenant_isolation ON public.audit_events
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
