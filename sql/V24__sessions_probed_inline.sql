-- The session check of every request, probed inside the opening statement's plan
-- (issue 11: immediate revocation at no extra round trip, and within 5% of the
-- list endpoints' throughput without it).
--
-- Until now the opening statement called app.session_alive, a PL/pgSQL SECURITY
-- DEFINER function (auth is closed to the runtime role). Each call set up its own
-- executor, SPI call and GUC nest level for the fixed search_path: on the list-stores
-- transaction as the server sends it that cost about 30% of the database's
-- throughput (pgbench, 4 clients; the same probe written into the statement cost 4-7%).
-- So the liveness of each session is kept where the runtime role may read it, under
-- a policy that shows a session only to a request that names it:
--
--   * public.sessions: one row per session (a refresh-token family, the access
--     token's `sid`), with `live_until`, the expiry of its live refresh token, or
--     NULL once it has ended. No secret is in it: what makes a session usable is its
--     refresh token (whose hash stays in auth) or an access token signed by the
--     server.
--   * Triggers on auth.refresh_tokens keep it: every statement that issues, rotates,
--     revokes or deletes tokens recounts the live token of each family it touched,
--     in its own transaction, so a logout, a password reset or change, a detected
--     reuse, a suspension or a deleted tenant ends the session in the same commit as
--     its tokens. Liveness is counted in one place, from the tokens, as
--     app.session_alive counted it.
--   * Disabling a user revokes their refresh tokens (a trigger on users.status):
--     what the function checked by joining users on every request is now done once,
--     when it happens, and re-enabling the account no longer revives old sessions.
--   * The runtime role reads sessions only through the policy of
--     policies/sessions.sql: the row whose id is app.session_id, which the server
--     sets with the rest of the context. Like app.session_alive, it answers about a
--     session the caller names, and cannot list anyone's sessions.

CREATE FUNCTION app.current_session_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT app.setting_uuid('app.session_id') $$;
REVOKE EXECUTE ON FUNCTION app.current_session_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.current_session_id() TO rowguard_api;

CREATE TABLE public.sessions (
    -- The refresh-token family: the `sid` of the session's access tokens.
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    -- The expiry of the session's live refresh token; NULL once it has none (ended).
    live_until timestamptz
);
GRANT SELECT ON public.sessions TO rowguard_api;
-- Closed from the start; its policy is policies/sessions.sql (applied after the
-- migrations).
ALTER TABLE public.sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.sessions FORCE ROW LEVEL SECURITY;

-- Recounts the live token of every family the statement touched. Writers of one
-- session take turns on its row (FOR UPDATE, in id order so two statements over
-- several sessions cannot deadlock) before the recount, which is a statement of its
-- own: under READ COMMITTED it then sees every change committed before the turn came,
-- so two concurrent writers of a family cannot leave a count that misses one of them.
-- SECURITY DEFINER: it writes as the owner (BYPASSRLS) whoever changed the tokens,
-- since under the table's forced row-level security another writer would update
-- nothing, silently.
CREATE FUNCTION app.sessions_follow_tokens() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO public.sessions (id, user_id)
        SELECT DISTINCT c.family_id, c.user_id FROM changed AS c
        ON CONFLICT (id) DO NOTHING;
    END IF;
    PERFORM 1 FROM public.sessions AS s
    WHERE s.id IN (SELECT c.family_id FROM changed AS c)
    ORDER BY s.id
    FOR UPDATE;
    UPDATE public.sessions AS s
    SET live_until = (SELECT max(r.expires_at) FROM auth.refresh_tokens AS r
                      WHERE r.family_id = s.id AND r.user_id = s.user_id
                        AND r.used_at IS NULL AND r.revoked_at IS NULL)
    WHERE s.id IN (SELECT c.family_id FROM changed AS c);
    IF TG_OP = 'DELETE' THEN
        -- A family whose tokens are all gone (its tenant or user deleted) is no session.
        DELETE FROM public.sessions AS s
        WHERE s.id IN (SELECT c.family_id FROM changed AS c)
          AND NOT EXISTS (SELECT 1 FROM auth.refresh_tokens AS r WHERE r.family_id = s.id);
    END IF;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION app.sessions_follow_tokens() FROM PUBLIC;

-- A TRUNCATE of the tokens (an operator's) ends every session.
CREATE FUNCTION app.sessions_end_with_truncated_tokens() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM public.sessions;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION app.sessions_end_with_truncated_tokens() FROM PUBLIC;

-- A refresh token is issued only to an active user, into a family of its own user:
-- the login checks the status in one transaction, verifies the password outside any,
-- and starts the session in another, so a user disabled in between (or while a
-- refresh rotates) would otherwise get a live session. FOR SHARE conflicts with the
-- UPDATE that disables: an insert waiting for a disable sees it, and a disable
-- waiting for an insert revokes the new token (its trigger's UPDATE is a statement
-- of its own). Refused with RGS01, which the server answers 401 `unauthenticated`:
-- it fails closed. The two that lock a token before inserting one (rotation, the
-- tenant switch) take the user's row first, at the end of this file, as a disable
-- does, so the two wait for each other rather than deadlock.
CREATE FUNCTION app.refresh_tokens_for_active_users() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM 1 FROM public.users AS u WHERE u.id = NEW.user_id AND u.status = 'active' FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no session for a user who is not active' USING ERRCODE = 'RGS01';
    END IF;
    IF EXISTS (SELECT 1 FROM public.sessions AS s
               WHERE s.id = NEW.family_id AND s.user_id <> NEW.user_id) THEN
        RAISE EXCEPTION 'the session is another user''s' USING ERRCODE = 'RGS01';
    END IF;
    RETURN NEW;
END
$$;
REVOKE EXECUTE ON FUNCTION app.refresh_tokens_for_active_users() FROM PUBLIC;
CREATE TRIGGER refresh_tokens_for_active_users BEFORE INSERT ON auth.refresh_tokens
    FOR EACH ROW EXECUTE FUNCTION app.refresh_tokens_for_active_users();

-- One trigger per event: PostgreSQL allows a transition table only on a trigger of
-- one event.
CREATE TRIGGER sessions_follow_inserted_tokens AFTER INSERT ON auth.refresh_tokens
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION app.sessions_follow_tokens();
CREATE TRIGGER sessions_follow_updated_tokens AFTER UPDATE ON auth.refresh_tokens
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION app.sessions_follow_tokens();
CREATE TRIGGER sessions_follow_deleted_tokens AFTER DELETE ON auth.refresh_tokens
    REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION app.sessions_follow_tokens();
CREATE TRIGGER sessions_end_with_truncated_tokens AFTER TRUNCATE ON auth.refresh_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION app.sessions_end_with_truncated_tokens();

-- A disabled account's sessions end with it, whoever disables it (no handler does:
-- it is an operator's UPDATE). SECURITY DEFINER: the one changing users.status need
-- not reach auth.
CREATE FUNCTION app.end_sessions_of_disabled_user() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE auth.refresh_tokens SET revoked_at = now()
    WHERE user_id = NEW.id AND revoked_at IS NULL AND used_at IS NULL;
    RETURN NULL;
END
$$;
REVOKE EXECUTE ON FUNCTION app.end_sessions_of_disabled_user() FROM PUBLIC;
CREATE TRIGGER users_disabled_end_their_sessions AFTER UPDATE OF status ON public.users
    FOR EACH ROW WHEN (OLD.status = 'active' AND NEW.status <> 'active')
    EXECUTE FUNCTION app.end_sessions_of_disabled_user();

-- The sessions that exist: those of disabled users end first, as they would have.
UPDATE auth.refresh_tokens AS r SET revoked_at = now()
FROM public.users AS u
WHERE u.id = r.user_id AND u.status <> 'active' AND r.revoked_at IS NULL AND r.used_at IS NULL;
INSERT INTO public.sessions (id, user_id, live_until)
SELECT r.family_id, r.user_id,
       max(r.expires_at) FILTER (WHERE r.used_at IS NULL AND r.revoked_at IS NULL)
FROM auth.refresh_tokens AS r
GROUP BY r.family_id, r.user_id
ON CONFLICT (id) DO NOTHING;

-- The credential functions' check of a session (app.session_password_hash,
-- app.set_session_password) reads the same rows. The opening statement no longer calls
-- it; the runtime role keeps it for one release, for the servers of the previous one
-- during a rolling deploy (their opening statement does), then loses it.
CREATE OR REPLACE FUNCTION app.session_alive(p_family_id uuid, p_user_id uuid) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM public.sessions AS s
                   WHERE s.id = p_family_id AND s.user_id = p_user_id AND s.live_until > now());
END
$$;

-- The writers that lock a token and then insert one: the user's row first (see
-- app.refresh_tokens_for_active_users). Otherwise as in V3 and V7.
CREATE OR REPLACE FUNCTION app.rotate_refresh_token(p_token_hash bytea, p_new_hash bytea, p_expires_at timestamptz)
    RETURNS TABLE (outcome text, user_id uuid, tenant_id uuid, family_id uuid)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v auth.refresh_tokens%ROWTYPE;
    v_member text;
BEGIN
    -- The user first, then the token: the order of a disable (its UPDATE of users,
    -- then its trigger's of the tokens), so the two wait for each other instead of
    -- deadlocking. A token's user never changes, so the lookup needs no lock.
    PERFORM 1 FROM public.users AS u
    WHERE u.id = (SELECT r.user_id FROM auth.refresh_tokens AS r WHERE r.token_hash = p_token_hash)
    FOR SHARE;
    SELECT * INTO v FROM auth.refresh_tokens AS r WHERE r.token_hash = p_token_hash FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'invalid';
        RETURN NEXT;
        RETURN;
    END IF;
    user_id := v.user_id;
    tenant_id := v.tenant_id;
    family_id := v.family_id;
    IF v.revoked_at IS NOT NULL THEN
        outcome := 'revoked';
    ELSIF v.used_at IS NOT NULL THEN
        UPDATE auth.refresh_tokens AS r SET revoked_at = now()
        WHERE r.family_id = v.family_id AND r.revoked_at IS NULL;
        outcome := 'reused';
    ELSIF v.expires_at <= now() THEN
        outcome := 'expired';
    ELSE
        SELECT CASE WHEN u.status <> 'active' OR t.status <> 'active' OR tu.status <> 'active'
                    THEN 'suspended' ELSE 'active' END
        INTO v_member
        FROM public.users AS u
        JOIN public.tenant_users AS tu ON tu.user_id = u.id AND tu.tenant_id = v.tenant_id
        JOIN public.tenants AS t ON t.id = tu.tenant_id
        WHERE u.id = v.user_id;
        IF v_member IS NULL THEN
            outcome := 'removed';
        ELSIF v_member <> 'active' THEN
            outcome := 'suspended';
        ELSE
            UPDATE auth.refresh_tokens AS r SET used_at = now() WHERE r.id = v.id;
            INSERT INTO auth.refresh_tokens (family_id, user_id, tenant_id, token_hash, expires_at)
            VALUES (v.family_id, v.user_id, v.tenant_id, p_new_hash, p_expires_at);
            outcome := 'ok';
        END IF;
    END IF;
    RETURN NEXT;
END
$$;

CREATE OR REPLACE FUNCTION app.move_session_to_tenant(p_family_id uuid, p_token_hash bytea, p_expires_at timestamptz)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_moved integer;
BEGIN
    -- The user first, then the tokens, as app.rotate_refresh_token (V24).
    PERFORM 1 FROM public.users AS u WHERE u.id = app.current_user_id() FOR SHARE;
    -- Two switches racing on one session: the row lock makes the second find nothing.
    UPDATE auth.refresh_tokens SET used_at = now()
    WHERE family_id = p_family_id AND user_id = app.current_user_id()
      AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now();
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    IF v_moved = 0 THEN
        RETURN false;
    END IF;
    INSERT INTO auth.refresh_tokens (family_id, user_id, tenant_id, token_hash, expires_at)
    VALUES (p_family_id, app.current_user_id(), app.current_tenant_id(), p_token_hash, p_expires_at);
    UPDATE public.tenant_users SET last_used_at = now()
    WHERE tenant_id = app.current_tenant_id() AND user_id = app.current_user_id();
    RETURN true;
END
$$;
