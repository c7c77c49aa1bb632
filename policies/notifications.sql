-- notifications: in-app messages to one member of a tenant.
--
-- Tenant-scoped, and private to their recipient: a member reads and marks read only
-- their own notifications in the tenant of the context (another member's are as
-- invisible as another tenant's). Writing one is different: a flow of one member
-- notifies another (an accepted invitation notifies whoever sent it), so INSERT checks
-- the tenant only; the composite foreign key to tenant_users keeps the recipient a
-- member of that tenant. An INSERT for someone else therefore cannot return its row
-- (the SELECT policy applies to returned rows): the writer chooses the id itself.
-- The runtime role has no DELETE grant; the DELETE policy is there so that one added
-- later is still confined to the member's own rows.
ALTER TABLE public.notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.notifications FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS notifications_insert ON public.notifications;
CREATE POLICY notifications_insert ON public.notifications FOR INSERT
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));

DROP POLICY IF EXISTS notifications_select ON public.notifications;
CREATE POLICY notifications_select ON public.notifications FOR SELECT
    USING (tenant_id = (SELECT app.current_tenant_id())
           AND user_id = (SELECT app.current_user_id()));

DROP POLICY IF EXISTS notifications_update ON public.notifications;
CREATE POLICY notifications_update ON public.notifications FOR UPDATE
    USING (tenant_id = (SELECT app.current_tenant_id())
           AND user_id = (SELECT app.current_user_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id())
                AND user_id = (SELECT app.current_user_id()));

DROP POLICY IF EXISTS notifications_delete ON public.notifications;
CREATE POLICY notifications_delete ON public.notifications FOR DELETE
    USING (tenant_id = (SELECT app.current_tenant_id())
           AND user_id = (SELECT app.current_user_id()));
