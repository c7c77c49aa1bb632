-- The opening statement of every request transaction (DESIGN.md, "Shape").
--
-- The server calls `SELECT * FROM app.begin_request(tenant, user, store, permission)`
-- right after BEGIN, pipelined with it, so one round trip both sets the context and
-- answers every question the request needs answered before any handler SQL runs:
--   * the context: app.tenant_id, app.user_id, app.store_id, set transaction-locally
--     (set_config(..., true)), so COMMIT or ROLLBACK clears them and a pooled connection
--     carries nothing to the next request (invariant 1);
--   * is the tenant active, is the user an active member, can the user reach the store
--     named by X-Store-ID, does the user hold the permission the operation declares;
--   * the user's effective permissions (in that store, when one is named).
-- Last, it switches the transaction to the runtime role rowguard_api, so the handler's
-- SQL runs under row-level security (invariant 2).
--
-- Deliberately SECURITY INVOKER and without a SET clause: a function with a SET clause
-- restores every setting changed inside it when it returns, which would undo the
-- context, and a SECURITY DEFINER function may not change the role. Every name is
-- schema-qualified instead. Only the server's login role may call it.
CREATE FUNCTION app.begin_request(
    p_tenant_id uuid,
    p_user_id uuid,
    p_store_id uuid,
    p_permission text
)
    RETURNS TABLE (
        tenant_active boolean,
        member_active boolean,
        member_status text,
        store_accessible boolean,
        permission_granted boolean,
        permission_in_some_store boolean,
        permissions text[]
    )
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_permissions text[];
BEGIN
    PERFORM pg_catalog.set_config('app.tenant_id', coalesce(p_tenant_id::text, ''), true);
    PERFORM pg_catalog.set_config('app.user_id', coalesce(p_user_id::text, ''), true);
    PERFORM pg_catalog.set_config('app.store_id', coalesce(p_store_id::text, ''), true);

    tenant_active := EXISTS (
        SELECT 1 FROM public.tenants AS t
        WHERE t.id = p_tenant_id AND t.status = 'active');

    -- 'active', 'suspended', or NULL when the user is not (or no longer) a member.
    -- A disabled user counts as suspended everywhere.
    SELECT CASE WHEN u.status = 'active' THEN tu.status ELSE 'suspended' END
    INTO member_status
    FROM public.tenant_users AS tu
    JOIN public.users AS u ON u.id = tu.user_id
    WHERE tu.tenant_id = p_tenant_id AND tu.user_id = p_user_id;
    member_active := coalesce(member_status = 'active', false);

    -- A store is reachable through a tenant-wide role, a role scoped to that store, or
    -- a store link (invariant 4). No store named: nothing to check.
    store_accessible := p_store_id IS NULL OR (member_active AND EXISTS (
        SELECT 1 FROM public.stores AS s
        WHERE s.tenant_id = p_tenant_id AND s.id = p_store_id AND s.status = 'active'
          AND (
            EXISTS (SELECT 1 FROM public.user_roles AS ur
                    WHERE ur.tenant_id = p_tenant_id AND ur.user_id = p_user_id
                      AND (ur.store_id IS NULL OR ur.store_id = p_store_id))
            OR EXISTS (SELECT 1 FROM public.store_users AS su
                       WHERE su.tenant_id = p_tenant_id AND su.store_id = p_store_id
                         AND su.user_id = p_user_id))));

    -- Effective permissions: tenant-wide roles, plus the roles scoped to the named store.
    IF member_active AND tenant_active THEN
        SELECT coalesce(pg_catalog.array_agg(DISTINCT rp.permission_code ORDER BY rp.permission_code), '{}')
        INTO v_permissions
        FROM public.user_roles AS ur
        JOIN public.role_permissions AS rp
          ON rp.tenant_id = ur.tenant_id AND rp.role_id = ur.role_id
        WHERE ur.tenant_id = p_tenant_id AND ur.user_id = p_user_id
          AND (ur.store_id IS NULL OR ur.store_id = p_store_id);
    ELSE
        v_permissions := '{}';
    END IF;
    permissions := v_permissions;
    permission_granted := p_permission IS NULL OR p_permission = ANY (v_permissions);
    -- For lists a store-scoped user may see part of (their stores): the permission
    -- held tenant-wide or in at least one store.
    permission_in_some_store := permission_granted OR (member_active AND tenant_active AND EXISTS (
        SELECT 1 FROM public.user_roles AS ur
        JOIN public.role_permissions AS rp ON rp.tenant_id = ur.tenant_id AND rp.role_id = ur.role_id
        WHERE ur.tenant_id = p_tenant_id AND ur.user_id = p_user_id AND rp.permission_code = p_permission));

    PERFORM pg_catalog.set_config('role', 'rowguard_api', true);
    RETURN NEXT;
END
$$;

REVOKE EXECUTE ON FUNCTION app.begin_request(uuid, uuid, uuid, text) FROM PUBLIC;
