-- identity: switching tenant moves the session instead of forking it.
--
-- A session (refresh-token family) is one chain: each refresh replaces its live token.
-- Switching tenant used to add a second chain to the family, from an access token
-- alone, so a stolen access token became a refresh token of its own that the
-- victim's password change kept (it keeps the caller's family). Now a switch uses up
-- the family's live token and issues its successor in the target tenant, like a
-- rotation: the family stays one chain, the client holds the one live refresh token,
-- and a thief's switch is caught as a reuse the next time the victim refreshes.
CREATE FUNCTION app.move_session_to_tenant(p_family_id uuid, p_token_hash bytea, p_expires_at timestamptz)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_moved integer;
BEGIN
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
REVOKE ALL ON FUNCTION app.move_session_to_tenant(uuid, bytea, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.move_session_to_tenant(uuid, bytea, timestamptz) TO rowguard_api;

-- A password change keeps the caller's session only if its live token is in the
-- tenant the caller acts in: a session moved elsewhere by someone holding the
-- caller's access token ends with every other one.
CREATE OR REPLACE FUNCTION app.set_current_user_password(p_password_hash text, p_keep_family_id uuid) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE auth.user_credentials SET password_hash = p_password_hash, updated_at = now()
    WHERE user_id = app.current_user_id();
    UPDATE auth.refresh_tokens SET revoked_at = now()
    WHERE user_id = app.current_user_id() AND revoked_at IS NULL
      AND family_id IS DISTINCT FROM (
          SELECT r.family_id FROM auth.refresh_tokens AS r
          WHERE r.family_id = p_keep_family_id AND r.user_id = app.current_user_id()
            AND r.tenant_id = app.current_tenant_id()
            AND r.used_at IS NULL AND r.revoked_at IS NULL
          LIMIT 1);
    UPDATE auth.password_reset_tokens SET used_at = now()
    WHERE user_id = app.current_user_id() AND used_at IS NULL;
$$;

-- Unused since the opening statement checks the session itself; kept for one release
-- so that servers of the previous one keep working during a rolling deploy.
COMMENT ON FUNCTION app.session_active(uuid) IS
    'Deprecated: unused since the opening statement checks the session (src/platform/db/begin_request.sql); '
    'kept for servers of the previous release during a rolling deploy.';
