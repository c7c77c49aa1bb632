-- The plan's limits, checked inside the transaction that creates the limited row
-- (docs/design.md invariant 11): stores, members (active members plus pending
-- invitations) and products. The feature gate needs no SQL of its own: the opening
-- statement reads the subscription and plan_features (src/platform/db/begin_request.sql).

-- Whether the tenant of the context may create one more `p_limit` thing: true, or it
-- raises RGL01 with the limit, its maximum and the current count as JSON in DETAIL
-- (src/error.rs turns that into 403 `limit_exceeded`). Called by the INSERT that
-- creates the row (`INSERT ... SELECT ... WHERE app.within_plan_limit('stores')`), so a
-- create stays one statement.
--
-- Serialised per tenant: on a limited plan it locks the tenant's subscription row until
-- the transaction ends, and counts after the lock is granted. In READ COMMITTED each
-- statement of a function takes a new snapshot, so a create that waited for another
-- counts what that one committed: of two concurrent creates at the limit, exactly one
-- succeeds. On an unlimited plan nothing is locked (creates of a tenant run in
-- parallel).
--
-- SECURITY DEFINER because the count must see every limited row of the tenant, which
-- the caller's policies might not all show (and the lock needs an UPDATE privilege
-- the runtime role does not have); every query names the context's tenant.
CREATE FUNCTION app.within_plan_limit(p_limit text)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM app.check_plan_limit(p_limit, 1);
    RETURN true;
END
$$;

-- The same check after the row is written (`p_adding` 0): for a flow whose row held a
-- seat when it began and may not since, such as accepting an invitation that expired
-- while the acceptance ran (the seat was counted free meanwhile). Raises RGL01 when
-- the count is over the maximum.
CREATE FUNCTION app.plan_limit_holds(p_limit text)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM app.check_plan_limit(p_limit, 0);
    RETURN true;
END
$$;

-- Whether `p_adding` more `p_limit` things fit the plan of the context's tenant. Also
-- refuses (RGP02, 402 `payment_required`) to add any when the subscription is unpaid:
-- what takes a new seat waits for payment on every path, declared or not (reactivating
-- a member is not a declared create).
--
-- A plan read as unlimited is not locked: a create racing the very change to a limited
-- plan may land, as it would have a moment earlier; a tenant over its new limit keeps
-- what it has and creates no more.
CREATE FUNCTION app.check_plan_limit(p_limit text, p_adding integer)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant uuid := app.current_tenant_id();
    v_max bigint;
    v_status text;
    v_current bigint;
BEGIN
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'limits are checked for the tenant of the context' USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT l.max, s.status INTO v_max, v_status
    FROM public.subscriptions AS s
    JOIN public.plan_limits AS l ON l.plan_code = s.plan_code AND l.limit_code = p_limit
    WHERE s.tenant_id = v_tenant;
    IF NOT FOUND THEN
        -- No subscription, or a limit the seed does not have: a bug, never a pass.
        RAISE EXCEPTION 'no % limit for tenant %', p_limit, v_tenant USING ERRCODE = 'RGL00';
    END IF;
    IF v_max IS NOT NULL THEN
        -- Lock first, then read the plan again in a statement of its own, which sees
        -- what a transaction that held the lock committed (a plan change). Locking in
        -- the statement that joins the plan's limits would re-check only the locked
        -- row and find no limit after a change: unlimited by mistake.
        PERFORM 1 FROM public.subscriptions AS s WHERE s.tenant_id = v_tenant FOR NO KEY UPDATE;
        SELECT l.max, s.status INTO v_max, v_status
        FROM public.subscriptions AS s
        JOIN public.plan_limits AS l ON l.plan_code = s.plan_code AND l.limit_code = p_limit
        WHERE s.tenant_id = v_tenant;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no % limit for tenant %', p_limit, v_tenant USING ERRCODE = 'RGL00';
        END IF;
    END IF;
    IF p_adding > 0 AND v_status = 'unpaid' THEN
        RAISE EXCEPTION 'the subscription is unpaid' USING ERRCODE = 'RGP02';
    END IF;
    IF v_max IS NULL THEN
        RETURN;
    END IF;
    v_current := app.plan_limit_usage(v_tenant, p_limit, now());
    IF v_current + p_adding > v_max THEN
        RAISE EXCEPTION 'the plan allows % %', v_max, p_limit
            USING ERRCODE = 'RGL01',
                  DETAIL = pg_catalog.json_build_object('limit', p_limit, 'max', v_max,
                                                        'current', v_current)::text;
    END IF;
END
$$;

-- How many `p_limit` things the tenant has at `p_now` (when invitations are pending):
-- the count a limit bounds. One definition, for the check above and for usage
-- (GET /usage/current, usage.aggregate, which take "now" as a parameter).
CREATE FUNCTION app.plan_limit_usage(p_tenant uuid, p_limit text, p_now timestamptz)
    RETURNS bigint
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE p_limit
        WHEN 'stores' THEN (SELECT count(*) FROM public.stores AS s WHERE s.tenant_id = p_tenant)
        WHEN 'products' THEN (SELECT count(*) FROM public.products AS p WHERE p.tenant_id = p_tenant)
        -- A suspended member holds no seat; reactivating one takes a seat again.
        WHEN 'members' THEN
            (SELECT count(*) FROM public.tenant_users AS tu
             WHERE tu.tenant_id = p_tenant AND tu.status = 'active')
            + (SELECT count(*) FROM public.invitations AS i
               WHERE i.tenant_id = p_tenant AND i.accepted_at IS NULL AND i.revoked_at IS NULL
                 AND i.expires_at > p_now)
    END
$$;

REVOKE ALL ON FUNCTION app.within_plan_limit(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION app.plan_limit_holds(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION app.check_plan_limit(text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION app.plan_limit_usage(uuid, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.within_plan_limit(text) TO rowguard_api;
GRANT EXECUTE ON FUNCTION app.plan_limit_holds(text) TO rowguard_api;
GRANT EXECUTE ON FUNCTION app.plan_limit_usage(uuid, text, timestamptz) TO rowguard_api;
