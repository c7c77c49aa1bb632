-- tenants: the companies. A tenant row is its own tenant: its id is the value of
-- app.tenant_id, so a request sees and edits only the tenant it acts in, and can
-- create a tenant only by first setting the new tenant's id as its context
-- (registration does exactly that). The runtime role has no DELETE grant here.
ALTER TABLE public.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.tenants FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.tenants;
CREATE POLICY tenant_isolation ON public.tenants
    USING (id = (SELECT app.current_tenant_id()))
    WITH CHECK (id = (SELECT app.current_tenant_id()));
