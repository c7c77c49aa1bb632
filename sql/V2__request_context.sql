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
BEGIN
    PERFORM pg_catalog.set_config('app.tenant_id', coalesce(p_tenant_id::text, ''), true),
            pg_catalog.set_config('app.user_id', coalesce(p_user_id::text, ''), true),
            pg_catalog.set_config('app.store_id', coalesce(p_store_id::text, ''), true);

    -- Every answer in one query (each statement of a function costs an executor start;
    -- this runs on every request).
    SELECT
        tenant.active,
        -- 'active', 'suspended', or NULL when the user is not (or no longer) a member.
        membership.status,
        -- A store is reachable through a tenant-wide role, a role scoped to that store,
        -- or a store link (invariant 4). No store named: nothing to check.
        p_store_id IS NULL
            OR (membership.status = 'active' AND store.active AND (roles.reach_store OR link.linked)),
        -- Effective permissions: tenant-wide roles, plus those scoped to the store.
        CASE WHEN tenant.active AND membership.status = 'active' THEN roles.permissions ELSE '{}' END,
        -- For lists a store-scoped user sees part of (their stores): the permission
        -- held tenant-wide or in at least one store.
        tenant.active AND membership.status = 'active' AND roles.in_some_store
    INTO tenant_active, member_status, store_accessible, permissions, permission_in_some_store
    FROM (SELECT EXISTS (SELECT 1 FROM public.tenants AS t
                         WHERE t.id = p_tenant_id AND t.status = 'active') AS active) AS tenant
    LEFT JOIN LATERAL (
        -- A disabled user counts as suspended everywhere.
        SELECT CASE WHEN u.status = 'active' THEN tu.status ELSE 'suspended' END AS status
        FROM public.tenant_users AS tu JOIN public.users AS u ON u.id = tu.user_id
        WHERE tu.tenant_id = p_tenant_id AND tu.user_id = p_user_id) AS membership ON true
    CROSS JOIN LATERAL (
        SELECT coalesce(pg_catalog.array_agg(DISTINCT rp.permission_code ORDER BY rp.permission_code)
                            FILTER (WHERE rp.permission_code IS NOT NULL
                                      AND (ur.store_id IS NULL OR ur.store_id = p_store_id)),
                        '{}') AS permissions,
               coalesce(pg_catalog.bool_or(rp.permission_code = p_permission), false) AS in_some_store,
               coalesce(pg_catalog.bool_or(ur.store_id IS NULL OR ur.store_id = p_store_id), false) AS reach_store
        FROM public.user_roles AS ur
        LEFT JOIN public.role_permissions AS rp ON rp.tenant_id = ur.tenant_id AND rp.role_id = ur.role_id
        WHERE ur.tenant_id = p_tenant_id AND ur.user_id = p_user_id) AS roles
    CROSS JOIN LATERAL (
        SELECT EXISTS (SELECT 1 FROM public.stores AS s
                       WHERE s.tenant_id = p_tenant_id AND s.id = p_store_id AND s.status = 'active') AS active) AS store
    CROSS JOIN LATERAL (
        SELECT EXISTS (SELECT 1 FROM public.store_users AS su
                       WHERE su.tenant_id = p_tenant_id AND su.store_id = p_store_id
                         AND su.user_id = p_user_id) AS linked) AS link;

    member_active := coalesce(member_status = 'active', false);
    store_accessible := coalesce(store_accessible, false);
    permission_granted := p_permission IS NULL OR p_permission = ANY (permissions);
    permission_in_some_store := permission_granted OR coalesce(permission_in_some_store, false);

    PERFORM pg_catalog.set_config('role', 'rowguard_api', true);
    RETURN NEXT;
END
$$;

REVOKE EXECUTE ON FUNCTION app.begin_request(uuid, uuid, uuid, text) FROM PUBLIC;
