-- API keys (docs/api.md Part 2, "API keys"; module src/modules/api_keys): credentials
-- for integrations (a point-of-sale terminal, a script), not a person's password.
--
-- A key is `rgk_` + its id + a secret + a checksum (the format: src/modules/api_keys/
-- key.rs). Only the SHA-256 of the whole key is stored, in `secret_hash`, which the
-- runtime role may write (creating a key) but never read (invariants 6 and 14): a key
-- is checked by app.api_key_principal, a definer function that answers yes or no about
-- the key the caller presents.
--
-- A key acts as its creator, in its tenant, with the intersection of its permissions
-- and the creator's current ones: the opening statement (src/platform/db/
-- begin_request.sql) reads `permissions` here and the creator's roles as for a token,
-- so demoting, suspending or removing the creator narrows or ends the key at once.

CREATE TABLE api_keys (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    -- The member the key acts as. Removing them from the tenant leaves the row (the
    -- audit trail names it) but the key stops: the membership is gone.
    created_by   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- The key's first characters (`rgk_` and its id), not secret: what a list shows
    -- so that a person can tell which key a leaked or logged one is.
    prefix       text NOT NULL,
    secret_hash  bytea NOT NULL CHECK (length(secret_hash) = 32),
    permissions  text[] NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    -- Recorded at most once a minute per key (app.api_key_principal): a read-only
    -- request costs no write the rest of the time.
    last_used_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- docs/design.md invariant 5; the policy's column leads the key. The id alone is
    -- unique too: a presented key names only its id, and its tenant is the row's.
    PRIMARY KEY (tenant_id, id),
    UNIQUE (id),
    CHECK (expires_at > created_at)
);

-- The list's keyset order.
CREATE INDEX api_keys_tenant_created ON api_keys (tenant_id, created_at, id);

-- Requests list, create and revoke their tenant's keys; secret_hash is written once
-- and never read by them.
GRANT SELECT (tenant_id, id, created_by, name, prefix, permissions, expires_at, revoked_at,
              last_used_at, created_at)
    ON api_keys TO rowguard_api;
GRANT INSERT (tenant_id, id, created_by, name, prefix, secret_hash, permissions, expires_at)
    ON api_keys TO rowguard_api;
GRANT UPDATE (revoked_at) ON api_keys TO rowguard_api;

-- Authenticating with a key, right after the transaction switched to the runtime
-- role and before the opening statement (src/platform/db/request_tx.rs): the tenant
-- and user the key acts as, if the key is live (its hash matches, not revoked, not
-- expired, its creator's account active), or no row. The caller sets the context
-- from the answer, so the tenant comes from the key's row, never from the client.
-- Membership, the tenant's status and permissions are the opening statement's, as for
-- a token.
--
-- It also records last_used_at when it is more than a minute old: one conditional
-- write a minute per key, in the request's transaction, instead of one per request
-- (a request that rolls back loses it; the next one records it). Concurrent requests
-- of one stale key queue on the row for that one write only: the second re-checks
-- the condition after the first commits and writes nothing.
CREATE FUNCTION app.api_key_principal(p_key_id uuid, p_secret_hash bytea)
    RETURNS TABLE (tenant_id uuid, user_id uuid)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key record;
BEGIN
    SELECT k.tenant_id, k.created_by, k.last_used_at INTO v_key
    FROM public.api_keys AS k JOIN public.users AS u ON u.id = k.created_by
    WHERE k.id = p_key_id AND k.secret_hash = p_secret_hash
      AND k.revoked_at IS NULL AND k.expires_at > now() AND u.status = 'active';
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF v_key.last_used_at IS NULL OR v_key.last_used_at < now() - interval '1 minute' THEN
        UPDATE public.api_keys AS k SET last_used_at = now()
        WHERE k.id = p_key_id
          AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute');
    END IF;
    tenant_id := v_key.tenant_id;
    user_id := v_key.created_by;
    RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION app.api_key_principal(uuid, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.api_key_principal(uuid, bytea) TO rowguard_api;

-- Platform administration of tenants (docs/api.md Part 2, "Platform";
-- src/modules/platform_admin). A platform admin reads no tenant's data by being one:
-- these functions answer only the platform's own summary of each tenant (name, status,
-- plan, member count), and only to a caller whose context is an active platform admin
-- (app.current_user_is_platform_admin, V10); row-level security stays on for the
-- request itself.

-- A page of tenants, oldest first, after (p_after_created, p_after_id): nothing for a
-- caller who is not a platform admin.
CREATE FUNCTION app.platform_tenants_page(p_after_created timestamptz, p_after_id uuid, p_limit integer)
    RETURNS TABLE (id uuid, name text, status text, plan_code text, subscription_status text,
                   members bigint, created_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.id, t.name, t.status, s.plan_code, s.status,
           (SELECT count(*) FROM public.tenant_users AS tu
            WHERE tu.tenant_id = t.id AND tu.status = 'active'),
           t.created_at
    FROM public.tenants AS t
    LEFT JOIN public.subscriptions AS s ON s.tenant_id = t.id
    WHERE app.current_user_is_platform_admin()
      AND (t.created_at, t.id) > (p_after_created, p_after_id)
    ORDER BY t.created_at, t.id
    LIMIT p_limit
$$;

-- One tenant's summary, as the page shows it (after a change of its status).
CREATE FUNCTION app.platform_tenant(p_tenant_id uuid)
    RETURNS TABLE (id uuid, name text, status text, plan_code text, subscription_status text,
                   members bigint, created_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.id, t.name, t.status, s.plan_code, s.status,
           (SELECT count(*) FROM public.tenant_users AS tu
            WHERE tu.tenant_id = t.id AND tu.status = 'active'),
           t.created_at
    FROM public.tenants AS t
    LEFT JOIN public.subscriptions AS s ON s.tenant_id = t.id
    WHERE app.current_user_is_platform_admin() AND t.id = p_tenant_id
$$;

-- Suspends or reactivates a tenant: its members are refused (403 tenant_suspended)
-- from their next request, which reads the status in its opening statement. false:
-- no such tenant. For the command line (`rowguard tenant suspend|activate`, on the
-- machinery's role) and, behind the admin check below, the platform route.
CREATE FUNCTION app.set_tenant_status(p_tenant_id uuid, p_status text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE public.tenants SET status = p_status, updated_at = now() WHERE id = p_tenant_id;
    RETURN FOUND;
END
$$;

-- The platform route's: the same, for an active platform admin only (42501 otherwise,
-- though the route checked already: the function holds by itself).
CREATE FUNCTION app.platform_set_tenant_status(p_tenant_id uuid, p_status text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT app.current_user_is_platform_admin() THEN
        RAISE EXCEPTION 'platform admins only' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN app.set_tenant_status(p_tenant_id, p_status);
END
$$;

REVOKE ALL ON FUNCTION app.platform_tenants_page(timestamptz, uuid, integer),
    app.platform_tenant(uuid), app.set_tenant_status(uuid, text), app.platform_set_tenant_status(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.platform_tenants_page(timestamptz, uuid, integer),
    app.platform_tenant(uuid), app.platform_set_tenant_status(uuid, text) TO rowguard_api;
-- rowguard_auth inherits rowguard_api's; the plain one is its alone (not a request's).
GRANT EXECUTE ON FUNCTION app.set_tenant_status(uuid, text) TO rowguard_auth;
