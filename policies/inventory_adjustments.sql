-- inventory_adjustments: the stock ledger of the reference module. Store-scoped like
-- inventory: a request sees and appends only the entries of the store in
-- app.store_id. The runtime role has no UPDATE or DELETE grant: the ledger is
-- append-only.
ALTER TABLE public.inventory_adjustments ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.inventory_adjustments FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS store_isolation ON public.inventory_adjustments;
CREATE POLICY store_isolation ON public.inventory_adjustments
    USING (tenant_id = (SELECT app.current_tenant_id())
           AND store_id = (SELECT app.current_store_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id())
                AND store_id = (SELECT app.current_store_id()));
