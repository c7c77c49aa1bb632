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
