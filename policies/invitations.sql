-- invitations: pending invitations of a tenant. Tenant-scoped: a request sees and
-- writes only its own tenant's invitations. Their tokens are not here: only their
-- hashes, in auth.invitation_tokens, which the runtime role cannot read.
ALTER TABLE public.invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.invitations FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.invitations;
CREATE POLICY tenant_isolation ON public.invitations
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
