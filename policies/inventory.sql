-- inventory: stock per product per store. Store-scoped (docs/design.md invariant 4): on
-- top of the tenant, a request sees and writes only the rows of the store in
-- app.store_id, which the server sets only after checking, in the same statement,
-- that the user can reach that store. No store in the context: no rows.
ALTER TABLE public.inventory ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.inventory FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS store_isolation ON public.inventory;
CREATE POLICY store_isolation ON public.inventory
    USING (tenant_id = (SELECT app.current_tenant_id())
           AND store_id = (SELECT app.current_store_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id())
                AND store_id = (SELECT app.current_store_id()));
