-- The access question of every request transaction (docs/design.md, "Shape"), sent by
-- src/platform/db/request_tx.rs pipelined behind BEGIN and the context (SET LOCAL of
-- app.tenant_id, app.user_id, app.store_id, then of the runtime role), in one round
-- trip, as a statement prepared once per connection.
-- Parameters: $1 tenant, $2 user, $3 store (X-Store-ID), $4 the permission the
-- operation declares (any of the four may be NULL), $5 whether to list the user's
-- effective permissions (only the operations that read them ask), $6 the session the
-- access token was issued in (its refresh-token family; NULL for flows that start from
-- no token: login, registration, refresh), $7 the store whose store-scoped roles count
-- toward the permission: the store a store-scoped operation acts in (X-Store-ID, or
-- the path's store on /stores/{id}), NULL for every other operation, where only
-- tenant-wide roles grant (a role held in one store must not act tenant-wide because a
-- request names that store), $8 the feature the operation declares (NULL: none), $9
-- whether the operation is gated by the plan (it declares a feature or creates a
-- limited thing), so an unpaid subscription refuses it, $10 the API key the request
-- presents (NULL for a token).
--
-- With an API key, $1 and $2 are NULL: the tenant and user are the key's row's, which
-- the transaction's context was set from (app.api_key_principal, in the same round
-- trip, before this statement), so they are read from the context (`ctx`). The key's
-- permissions narrow the creator's: every answer about a permission is the
-- intersection of the two.
--
-- It answers every question the request needs answered before any handler SQL runs:
--   * is the token's session still alive: not logged out, not ended by a password reset
--     or change, not revoked for a reused refresh token, its user not disabled (one
--     probe of public.sessions by its key, which triggers keep from the refresh tokens,
--     sql/V24; its policy shows the one session named by app.session_id), so that
--     ending a session ends its access tokens at once, not when they expire;
--   * is the tenant active, is the user an active member, can the user reach the store
--     named by X-Store-ID, does the user hold the permission the operation declares;
--   * does the tenant's plan have the feature the operation declares, and, for a gated
--     operation, is the subscription unpaid (invariant 11: the plan is checked where
--     the permission is, in this statement, never by a query of its own);
--   * when asked, the user's effective permissions (in that store, when one is named);
--   * the tenant and user the request acts as (the token's, or the key's).
--
-- It runs as the runtime role, under row-level security, with the context already
-- set: the server's login roles have no rights of their own (README, "Database
-- roles"), so nothing here reads more than the request's own tenant and user could.
-- The conditions use the parameters, which are the same values as the settings.
--
-- One plain statement rather than a PL/pgSQL function: the function's own statements
-- and its set-returning call made the opening transaction about a fifth slower
-- (pgbench, see the README, "Performance").
SELECT
    -- A live session has an unused, unrevoked, unexpired refresh token (live_until is
    -- its expiry): rotation replaces it in the same transaction, and every way of
    -- ending a session revokes them all. Written here rather than called (a definer
    -- function, app.session_alive, cost about 30% of a list's database throughput: its
    -- own executor and search_path per call), so it is one more index probe of the plan.
    $6::uuid IS NULL
        OR EXISTS (SELECT 1 FROM public.sessions AS s
                   WHERE s.id = $6 AND s.user_id = $2 AND s.live_until > pg_catalog.now())
        AS session_active,
    tenant.active AS tenant_active,
    coalesce(membership.status = 'active', false) AS member_active,
    -- 'active', 'suspended', or NULL when the user is not (or no longer) a member.
    membership.status AS member_status,
    -- A store is reachable through a tenant-wide role, a role scoped to that store, or
    -- a store link (invariant 4). No store named: nothing to check.
    coalesce($3::uuid IS NULL
              OR (membership.status = 'active' AND store.active
                  AND (roles.reach_store OR link.linked)),
              false) AS store_accessible,
    $4::text IS NULL
        OR coalesce(tenant.active AND membership.status = 'active'
                    AND roles.granted AND ($10::uuid IS NULL OR $4 = ANY (api_key.permissions)),
                    false) AS permission_granted,
    -- For lists a store-scoped user sees part of (their stores): the permission held
    -- tenant-wide or in at least one store.
    $4::text IS NULL
        OR coalesce(tenant.active AND membership.status = 'active'
                    AND roles.in_some_store AND ($10::uuid IS NULL OR $4 = ANY (api_key.permissions)),
                    false) AS permission_in_some_store,
    -- The plan's answers: NULL when the operation is not gated (the subscription is
    -- not read at all then). A declared feature without a subscription row is refused
    -- (fail closed); a gated operation without one is not unpaid.
    coalesce(plan.has_feature, $8::text IS NULL) AS feature_in_plan,
    coalesce(plan.unpaid, false) AS payment_required,
    -- Effective permissions: tenant-wide roles, plus those scoped to the operation's
    -- store ($7). NULL
    -- unless asked ($5): collecting and sorting them is work most requests need not do.
    CASE WHEN NOT $5::boolean THEN NULL
         WHEN tenant.active AND membership.status = 'active'
         THEN (SELECT coalesce(pg_catalog.array_agg(DISTINCT rp.permission_code
                                                    ORDER BY rp.permission_code), '{}')
               FROM public.user_roles AS ur
               JOIN public.role_permissions AS rp
                 ON rp.tenant_id = ur.tenant_id AND rp.role_id = ur.role_id
               WHERE ur.tenant_id = ctx.tenant_id AND ur.user_id = ctx.user_id
                 AND (ur.store_id IS NULL OR ur.store_id = $7::uuid)
                 AND ($10::uuid IS NULL OR rp.permission_code = ANY (api_key.permissions)))
         ELSE '{}'
    END AS permissions,
    ctx.tenant_id,
    ctx.user_id
-- Always exactly one row: one context, one tenant row, at most one membership and
-- one key, aggregates without GROUP BY.
FROM (SELECT coalesce($1::uuid, app.current_tenant_id()) AS tenant_id,
             coalesce($2::uuid, app.current_user_id()) AS user_id) AS ctx
CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM public.tenants AS t
                     WHERE t.id = ctx.tenant_id AND t.status = 'active') AS active) AS tenant
LEFT JOIN LATERAL (
    -- A disabled user has no live session (their tokens are revoked), so is refused before
    -- the membership counts; the flows that start from no session check the user
    -- themselves.
    SELECT tu.status FROM public.tenant_users AS tu
    WHERE tu.tenant_id = ctx.tenant_id AND tu.user_id = ctx.user_id) AS membership ON true
LEFT JOIN LATERAL (
    -- The key's permissions (only with a key: the one-time filter on $10), while the
    -- tenant's plan has the api_keys feature: a key made on such a plan grants nothing
    -- once the tenant moved to one without it.
    SELECT k.permissions FROM public.api_keys AS k
    WHERE $10::uuid IS NOT NULL AND k.tenant_id = ctx.tenant_id AND k.id = $10
      AND EXISTS (SELECT 1 FROM public.subscriptions AS s
                  JOIN public.plan_features AS pf
                    ON pf.plan_code = s.plan_code AND pf.feature_code = 'api_keys'
                  WHERE s.tenant_id = ctx.tenant_id)) AS api_key ON true
CROSS JOIN LATERAL (
    -- The declared permission, held tenant-wide or in the operation's store ($7);
    -- held in any store; and whether a role reaches the named store ($3).
    SELECT coalesce(pg_catalog.bool_or(rp.permission_code = $4
                                       AND (ur.store_id IS NULL OR ur.store_id = $7::uuid)),
                    false) AS granted,
           coalesce(pg_catalog.bool_or(rp.permission_code = $4), false) AS in_some_store,
           coalesce(pg_catalog.bool_or(ur.store_id IS NULL OR ur.store_id = $3), false) AS reach_store
    FROM public.user_roles AS ur
    LEFT JOIN public.role_permissions AS rp ON rp.tenant_id = ur.tenant_id AND rp.role_id = ur.role_id
    WHERE ur.tenant_id = ctx.tenant_id AND ur.user_id = ctx.user_id) AS roles
LEFT JOIN LATERAL (
    -- One probe of the subscription by its primary key, and of plan_features by
    -- theirs when a feature is declared, only for a gated operation (the one-time
    -- filter on $8 and $9 skips the scan otherwise): the other requests pay nothing for
    -- the plan.
    SELECT s.status = 'unpaid' AS unpaid,
           $8::text IS NULL
               OR EXISTS (SELECT 1 FROM public.plan_features AS pf
                          WHERE pf.plan_code = s.plan_code AND pf.feature_code = $8) AS has_feature
    FROM public.subscriptions AS s
    WHERE ($9::boolean OR $8::text IS NOT NULL) AND s.tenant_id = ctx.tenant_id) AS plan ON true
CROSS JOIN LATERAL (
    SELECT EXISTS (SELECT 1 FROM public.stores AS s
                   WHERE s.tenant_id = ctx.tenant_id AND s.id = $3 AND s.status = 'active') AS active) AS store
CROSS JOIN LATERAL (
    SELECT EXISTS (SELECT 1 FROM public.store_users AS su
                   WHERE su.tenant_id = ctx.tenant_id AND su.store_id = $3
                     AND su.user_id = ctx.user_id) AS linked) AS link
