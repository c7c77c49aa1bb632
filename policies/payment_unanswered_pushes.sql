-- payment_unanswered_pushes: pushes of a tenant's that Daraja never answered.
-- Tenant-scoped: the initiating request and the callback (in the context of the push's
-- tenant, found by app.unanswered_push_for) see only their tenant's rows.
ALTER TABLE public.payment_unanswered_pushes ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.payment_unanswered_pushes FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.payment_unanswered_pushes;
CREATE POLICY tenant_isolation ON public.payment_unanswered_pushes
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
