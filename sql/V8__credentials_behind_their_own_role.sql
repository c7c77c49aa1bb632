-- Credentials behind a role of their own (attack review, finding 8).
--
-- Until now every request ran as rowguard_api, which could call every identity
-- function: SQL running as it (an injection, had one been found) could read any
-- user's password hash, mint a refresh token for anyone, plant a reset token or
-- overwrite a password, because those definer functions trust settings the role sets
-- itself. Now:
--
--   * rowguard_auth is the runtime role of the credential flows (login, refresh,
--     logout, registration, bootstrap, password reset and change, tenant switch,
--     accepting an invitation): rowguard_api's rights plus the credential functions,
--     which rowguard_api can no longer call.
--   * The server connects with two login roles (created by the operator, or by the
--     server itself in development: see README, "Database roles"): request sessions as
--     a role that can become rowguard_api and nothing else, credential flows as one
--     that can become rowguard_auth. Both are NOINHERIT and own nothing, so RESET ROLE
--     leaves an injected statement with no rights at all, and no request session can
--     ever become rowguard_auth.
--   * Functions that read or change a credential take the secret they act on (the
--     session, the invitation's token) rather than trusting a setting alone.
--
-- Servers of the previous release cannot run the credential flows against this
-- schema (their request role loses those functions): stop them before migrating.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rowguard_auth') THEN
        BEGIN
            -- INHERIT: it holds rowguard_api's table rights as its own.
            CREATE ROLE rowguard_auth NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE INHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF NOT pg_catalog.pg_has_role('rowguard_auth', 'rowguard_api', 'MEMBER') THEN
        BEGIN
            GRANT rowguard_api TO rowguard_auth;
        EXCEPTION WHEN unique_violation THEN
            NULL;
        END;
    END IF;
    -- As for rowguard_api (V1): a non-superuser owner switches to it in its checks.
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
       AND NOT pg_catalog.pg_has_role(current_user, 'rowguard_auth', 'MEMBER') THEN
        EXECUTE pg_catalog.format('GRANT rowguard_auth TO %I', current_user);
    END IF;
END
$$;

-- The session check of the opening statement (src/platform/db/begin_request.sql),
-- which now runs as rowguard_api, outside schema auth: whether this session of this
-- user is alive, and the user not disabled (a disabled account's sessions end with it:
-- its requests answer 401 at once). It answers a yes or no about a session the caller
-- names, nothing else. PL/pgSQL so that its query's plan is cached per connection;
-- checking the user here rather than joining users under RLS in the opening statement
-- saved about 7% of a list request's database time (bench/compare_opening.py).
CREATE FUNCTION app.session_alive(p_family_id uuid, p_user_id uuid) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM auth.refresh_tokens AS r JOIN public.users AS u ON u.id = r.user_id
                   WHERE r.family_id = p_family_id AND r.user_id = p_user_id
                     AND r.revoked_at IS NULL AND r.used_at IS NULL AND r.expires_at > now()
                     AND u.status = 'active');
END
$$;

-- Changing a password: the hash to verify the current password against, for the
-- user of a live session (the access token's), never for a user named by a setting
-- alone.
CREATE FUNCTION app.session_password_hash(p_family_id uuid) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.password_hash FROM auth.user_credentials AS c
    WHERE c.user_id = app.current_user_id() AND app.session_alive(p_family_id, c.user_id)
$$;

-- Sets the password of a live session's user; every other session of the user ends,
-- and this one too unless its live token is in the tenant the caller acts in (V7).
-- Outstanding reset tokens are used up. false: the session is not alive.
CREATE FUNCTION app.set_session_password(p_family_id uuid, p_password_hash text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid := app.current_user_id();
    v_keep uuid;
BEGIN
    IF NOT app.session_alive(p_family_id, v_user) THEN
        RETURN false;
    END IF;
    SELECT r.family_id INTO v_keep FROM auth.refresh_tokens AS r
    WHERE r.family_id = p_family_id AND r.user_id = v_user AND r.tenant_id = app.current_tenant_id()
      AND r.used_at IS NULL AND r.revoked_at IS NULL
    LIMIT 1;
    UPDATE auth.user_credentials SET password_hash = p_password_hash, updated_at = now()
    WHERE user_id = v_user;
    UPDATE auth.refresh_tokens SET revoked_at = now()
    WHERE user_id = v_user AND revoked_at IS NULL AND family_id IS DISTINCT FROM v_keep;
    UPDATE auth.password_reset_tokens SET used_at = now()
    WHERE user_id = v_user AND used_at IS NULL;
    RETURN true;
END
$$;

-- Accepting an invitation as an existing user: who that is, found from the
-- invitation's token (pending only), not from an email the caller names.
CREATE FUNCTION app.invitation_account(p_token_hash bytea)
    RETURNS TABLE (user_id uuid, status text, password_hash text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, u.status, c.password_hash
    FROM auth.invitation_tokens AS t
    JOIN public.invitations AS i ON i.tenant_id = t.tenant_id AND i.id = t.invitation_id
    JOIN public.users AS u ON u.email = i.email
    LEFT JOIN auth.user_credentials AS c ON c.user_id = u.id
    WHERE t.token_hash = p_token_hash
      AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now()
$$;

REVOKE EXECUTE ON FUNCTION
    app.session_alive(uuid, uuid),
    app.session_password_hash(uuid),
    app.set_session_password(uuid, text),
    app.invitation_account(bytea)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.session_alive(uuid, uuid) TO rowguard_api;

-- The credential functions: rowguard_auth only.
REVOKE EXECUTE ON FUNCTION
    app.create_user(uuid, text, text, text),
    app.bootstrap_user(uuid, text, text, text),
    app.login_lookup(text, text, integer, integer, integer),
    app.complete_login(text, bigint, uuid, uuid, bytea, timestamptz),
    app.issue_refresh_token(uuid, bytea, timestamptz),
    app.rotate_refresh_token(bytea, bytea, timestamptz),
    app.revoke_refresh_family(bytea),
    app.move_session_to_tenant(uuid, bytea, timestamptz),
    app.request_password_reset(text, text, bytea, timestamptz, integer),
    app.password_reset_email(bytea),
    app.reset_password(bytea, text),
    app.invitation_for_token(bytea)
FROM rowguard_api;
GRANT EXECUTE ON FUNCTION
    app.create_user(uuid, text, text, text),
    app.bootstrap_user(uuid, text, text, text),
    app.login_lookup(text, text, integer, integer, integer),
    app.complete_login(text, bigint, uuid, uuid, bytea, timestamptz),
    app.issue_refresh_token(uuid, bytea, timestamptz),
    app.rotate_refresh_token(bytea, bytea, timestamptz),
    app.revoke_refresh_family(bytea),
    app.move_session_to_tenant(uuid, bytea, timestamptz),
    app.request_password_reset(text, text, bytea, timestamptz, integer),
    app.password_reset_email(bytea),
    app.reset_password(bytea, text),
    app.invitation_for_token(bytea),
    app.session_password_hash(uuid),
    app.set_session_password(uuid, text),
    app.invitation_account(bytea)
TO rowguard_auth;

-- Replaced by the functions above, which take the secret they act on; no role may
-- call them any more (they stay, unused, for one release).
REVOKE EXECUTE ON FUNCTION
    app.session_active(uuid),
    app.current_user_password_hash(),
    app.set_current_user_password(text, uuid),
    app.user_for_invitation(text)
FROM rowguard_api;

-- UPDATE only on the columns a handler writes (finding 9): a request cannot change a
-- tenant's status, make a role a system role, or move a row between stores by
-- rewriting a column no handler touches. Tables no handler updates lose UPDATE.
REVOKE UPDATE ON tenants, tenant_users, stores, store_users, roles, role_permissions,
    user_roles, products, inventory, invitations FROM rowguard_api;
GRANT UPDATE (name, updated_at) ON tenants TO rowguard_api;
GRANT UPDATE (status) ON tenant_users TO rowguard_api;
GRANT UPDATE (name, code, address, status, updated_at) ON stores TO rowguard_api;
GRANT UPDATE (name, description, updated_at) ON roles TO rowguard_api;
GRANT UPDATE (sku, name, price_cents, updated_at) ON products TO rowguard_api;
GRANT UPDATE (quantity, updated_at) ON inventory TO rowguard_api;
GRANT UPDATE (accepted_at, revoked_at) ON invitations TO rowguard_api;

-- Readiness (GET /health) asks which migrations are applied, as rowguard_api: the
-- login roles have no rights of their own to ask with.
GRANT SELECT ON refinery_schema_history TO rowguard_api;
