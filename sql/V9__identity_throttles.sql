-- identity: throttles an attacker cannot turn against the owner (issue 11, findings 3,
-- 6, 7 and 9).
--
-- Failed logins were counted per email and per client address, and 10 wrong
-- passwords from anyone locked the owner out for the whole window. Now:
--   * the per-email limit counts per (email, client address): an attacker elsewhere
--     cannot lock the owner out (kind login_email_client, subject "<client> <email>";
--     the client comes first and has no space, so the subject is unambiguous);
--   * the per-client limit is unchanged (kind login_client);
--   * every failure for the email, from anywhere, still counts (kind login_email), and
--     past a ceiling each further attempt waits for a delay that doubles with each
--     failure, up to a cap: a distributed guesser gets a few guesses a minute, the
--     owner waits at most the cap, never the whole window.
-- The same throttle guards every place a password is checked: login, the current
-- password of POST /me/password, an existing user accepting an invitation.
--
-- Registrations of taken emails are limited per client address (kind register_client):
-- an enumeration is throttled, signing up is not.
--
-- Old attempts are pruned by the server itself (app.prune_attempts, called at start
-- and then every few minutes by a small task of the server: there is no job queue
-- yet), no longer now and then by a login.
--
-- The V3 signatures of app.login_lookup and app.complete_login stay, unused, for one
-- release. Like every credential function since V8, the new ones are rowguard_auth's
-- alone: request sessions cannot call them.

ALTER TABLE auth.attempts DROP CONSTRAINT attempts_kind_check;
ALTER TABLE auth.attempts ADD CONSTRAINT attempts_kind_check
    CHECK (kind IN ('login_email', 'login_client', 'login_email_client', 'forgot_email', 'register_client'));

-- Login throttle ----------------------------------------------------------------------

-- Checks the throttle of a password check for p_email from p_client and, when it does
-- not refuse, records the attempt as a failure *before* the password is verified
-- (under the email's and the client's locks, so parallel guesses cannot all read a
-- count below the limit). retry_after_secs > 0: refused, nothing recorded. Otherwise
-- attempt_ids are the rows recorded, which app.clear_login_failures takes back once
-- the password proved right.
CREATE FUNCTION app.login_throttle(
    p_email text, p_client text, p_window_secs integer, p_max_per_email_client integer,
    p_max_per_client integer, p_delay_after integer, p_max_delay_secs integer)
    RETURNS TABLE (retry_after_secs integer, attempt_ids bigint[])
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_since timestamptz := now() - make_interval(secs => p_window_secs);
    v_pair text := p_client || ' ' || p_email;
    v_until timestamptz;
    v_failures integer;
    v_latest timestamptz;
BEGIN
    -- Email first, then client: every caller takes them in this order, so no deadlock.
    PERFORM pg_advisory_xact_lock(hashtextextended('rowguard.login.email:' || p_email, 0));
    PERFORM pg_advisory_xact_lock(hashtextextended('rowguard.login.client:' || p_client, 0));
    -- The pair and the client: refused until the oldest attempt counted leaves the
    -- window (attempts are not recorded while refused, so a count never exceeds its
    -- limit).
    SELECT greatest(
        (SELECT min(a.created_at) FROM auth.attempts AS a
         WHERE a.kind = 'login_email_client' AND a.subject = v_pair AND a.created_at > v_since
         HAVING count(*) >= p_max_per_email_client),
        (SELECT min(a.created_at) FROM auth.attempts AS a
         WHERE a.kind = 'login_client' AND a.subject = p_client AND a.created_at > v_since
         HAVING count(*) >= p_max_per_client)) + make_interval(secs => p_window_secs)
    INTO v_until;
    -- The email from everywhere: past p_delay_after failures, the next attempt waits
    -- 1, 2, 4 ... seconds after the latest one, at most p_max_delay_secs.
    IF p_delay_after > 0 THEN
        SELECT count(*), max(a.created_at) INTO v_failures, v_latest FROM auth.attempts AS a
        WHERE a.kind = 'login_email' AND a.subject = p_email AND a.created_at > v_since;
        IF v_failures >= p_delay_after THEN
            v_until := greatest(v_until, v_latest + make_interval(
                secs => least(p_max_delay_secs, power(2, least(v_failures - p_delay_after, 30)))));
        END IF;
    END IF;
    IF v_until > now() THEN
        retry_after_secs := greatest(1, ceil(extract(epoch FROM v_until - now()))::integer);
        RETURN NEXT;
        RETURN;
    END IF;
    retry_after_secs := 0;
    WITH recorded AS (
        INSERT INTO auth.attempts (kind, subject)
        VALUES ('login_email', p_email), ('login_email_client', v_pair), ('login_client', p_client)
        RETURNING id)
    SELECT array_agg(r.id) INTO attempt_ids FROM recorded AS r;
    RETURN NEXT;
END
$$;

-- A password proved right: its attempt is taken back, and the earlier failures of the
-- email from this client are forgotten (the owner's own typos). Failures of the email
-- from elsewhere stay counted: a success does not hand a distributed guesser a fresh
-- allowance.
CREATE FUNCTION app.clear_login_failures(p_email text, p_client text, p_attempt_ids bigint[])
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM auth.attempts AS a
    WHERE a.id = ANY (p_attempt_ids)
       OR (a.kind = 'login_email_client' AND a.subject = p_client || ' ' || p_email);
$$;

-- Login's first question, as in V3 but through app.login_throttle: is this attempt
-- refused, and if not, whose hash to verify.
CREATE FUNCTION app.login_lookup(
    p_email text, p_client text, p_window_secs integer, p_max_per_email_client integer,
    p_max_per_client integer, p_delay_after integer, p_max_delay_secs integer)
    RETURNS TABLE (retry_after_secs integer, user_id uuid, user_status text, password_hash text,
                   attempt_ids bigint[])
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT t.retry_after_secs, t.attempt_ids INTO retry_after_secs, attempt_ids
    FROM app.login_throttle(p_email, p_client, p_window_secs, p_max_per_email_client,
                            p_max_per_client, p_delay_after, p_max_delay_secs) AS t;
    IF retry_after_secs = 0 THEN
        SELECT u.id, u.status, c.password_hash INTO user_id, user_status, password_hash
        FROM public.users AS u JOIN auth.user_credentials AS c ON c.user_id = u.id
        WHERE u.email = p_email;
    END IF;
    RETURN NEXT;
END
$$;

-- The rest of a login, once the password is verified: its failures cleared
-- (app.clear_login_failures), the tenant picked, a session started there. Without a
-- requested tenant, the most recently used one where both the tenant and the
-- membership are active (a suspension in the tenant used last does not break login);
-- 'suspended' only when there is none. outcome: ok | not_member (the requested
-- tenant) | no_membership | suspended (tenant or membership).
CREATE FUNCTION app.complete_login(
    p_email text, p_client text, p_attempt_ids bigint[], p_requested_tenant uuid,
    p_family_id uuid, p_token_hash bytea, p_expires_at timestamptz)
    RETURNS TABLE (outcome text, tenant_id uuid)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid := app.current_user_id();
    v_tenant uuid;
    v_active boolean;
BEGIN
    PERFORM app.clear_login_failures(p_email, p_client, p_attempt_ids);
    SELECT tu.tenant_id, (t.status = 'active' AND tu.status = 'active') INTO v_tenant, v_active
    FROM public.tenant_users AS tu JOIN public.tenants AS t ON t.id = tu.tenant_id
    WHERE tu.user_id = v_user AND (p_requested_tenant IS NULL OR tu.tenant_id = p_requested_tenant)
    ORDER BY (t.status = 'active' AND tu.status = 'active') DESC,
             tu.last_used_at DESC NULLS LAST, tu.created_at, t.id
    LIMIT 1;
    tenant_id := v_tenant;
    IF v_tenant IS NULL THEN
        outcome := CASE WHEN p_requested_tenant IS NULL THEN 'no_membership' ELSE 'not_member' END;
    ELSIF NOT v_active THEN
        outcome := 'suspended';
    ELSE
        INSERT INTO auth.refresh_tokens (family_id, user_id, tenant_id, token_hash, expires_at)
        VALUES (p_family_id, v_user, v_tenant, p_token_hash, p_expires_at);
        UPDATE public.tenant_users AS tu SET last_used_at = now()
        WHERE tu.tenant_id = v_tenant AND tu.user_id = v_user;
        outcome := 'ok';
    END IF;
    RETURN NEXT;
END
$$;

COMMENT ON FUNCTION app.login_lookup(text, text, integer, integer, integer) IS
    'Deprecated: replaced by the 7-argument app.login_lookup (V9); kept for servers of the '
    'previous release during a rolling deploy.';
COMMENT ON FUNCTION app.complete_login(text, bigint, uuid, uuid, bytea, timestamptz) IS
    'Deprecated: replaced by the 7-argument app.complete_login (V9); kept for servers of the '
    'previous release during a rolling deploy.';

-- Forgot-password -----------------------------------------------------------------------

-- As in V3, except that a request past the limit is no longer recorded: the count
-- stops at the limit, so a flood of requests for one email adds no rows.
CREATE OR REPLACE FUNCTION app.request_password_reset(
    p_email text, p_token text, p_token_hash bytea, p_expires_at timestamptz, p_max_per_hour integer)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_recent integer;
    v_user uuid;
BEGIN
    -- Count and record under a per-email lock: parallel requests take turns.
    PERFORM pg_advisory_xact_lock(hashtextextended('rowguard.forgot:' || p_email, 0));
    SELECT count(*) INTO v_recent FROM auth.attempts AS a
    WHERE a.kind = 'forgot_email' AND a.subject = p_email AND a.created_at > now() - interval '1 hour';
    IF v_recent >= p_max_per_hour THEN
        RETURN;
    END IF;
    INSERT INTO auth.attempts (kind, subject) VALUES ('forgot_email', p_email);
    SELECT u.id INTO v_user FROM public.users AS u WHERE u.email = p_email AND u.status = 'active';
    IF v_user IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO auth.password_reset_tokens (user_id, token_hash, expires_at)
    VALUES (v_user, p_token_hash, p_expires_at);
    INSERT INTO public.notification_outbox (recipient, template, payload)
    VALUES (p_email, 'password_reset',
            jsonb_build_object('user_id', v_user, 'token', p_token, 'expires_at', p_expires_at));
END
$$;

-- Registration and bootstrap: what can be answered before hashing ----------------------

-- A registration attempt from p_client for p_email, before its password is hashed.
-- Registrations of a taken email (what an account enumeration is made of: 409, or
-- 202 when taken emails are concealed) are counted per client address; past
-- p_max_per_hour of them in the last hour the client is refused (retry_after_secs > 0)
-- before anything else is answered. A registration of a new email is never counted,
-- so signing up is not throttled. 0: no limit, nothing recorded. email_taken: whether
-- the email is already registered (the unique index on users.email still decides).
CREATE FUNCTION app.registration_attempt(p_client text, p_email text, p_max_per_hour integer)
    RETURNS TABLE (retry_after_secs integer, email_taken boolean)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_oldest timestamptz;
BEGIN
    retry_after_secs := 0;
    IF p_max_per_hour > 0 THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('rowguard.register.client:' || p_client, 0));
        SELECT min(a.created_at) INTO v_oldest FROM auth.attempts AS a
        WHERE a.kind = 'register_client' AND a.subject = p_client
          AND a.created_at > now() - interval '1 hour'
        HAVING count(*) >= p_max_per_hour;
        IF v_oldest IS NOT NULL THEN
            retry_after_secs := greatest(1, ceil(extract(epoch FROM v_oldest + interval '1 hour' - now()))::integer);
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    email_taken := EXISTS (SELECT 1 FROM public.users AS u WHERE u.email = p_email);
    IF email_taken AND p_max_per_hour > 0 THEN
        INSERT INTO auth.attempts (kind, subject) VALUES ('register_client', p_client);
    END IF;
    RETURN NEXT;
END
$$;

-- Whether bootstrap is still open (no user exists): asked before hashing. The answer
-- can change before the bootstrap commits; app.bootstrap_user still decides.
CREATE FUNCTION app.bootstrap_open() RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT NOT EXISTS (SELECT 1 FROM public.users)
$$;

-- Invitations ---------------------------------------------------------------------------

-- Whether the tenant of an invitation token is active, asked before any password is
-- hashed or verified: accepting into a suspended tenant is refused and leaves the
-- invitation pending. False for an unknown token.
CREATE FUNCTION app.invitation_tenant_active(p_token_hash bytea) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT 1 FROM auth.invitation_tokens AS it
        JOIN public.tenants AS t ON t.id = it.tenant_id
        WHERE it.token_hash = p_token_hash AND t.status = 'active')
$$;

-- Pruning -------------------------------------------------------------------------------

-- Forgets at most p_batch attempts older than p_older_than_secs (the longest window
-- any throttle counts), and never any of the last hour (the windows of
-- forgot-password and registration), so that no caller can wipe the counts of a
-- throttle; returns how many. The server calls it in batches, each its own short
-- transaction, so a table grown under attack is emptied without one long statement.
CREATE FUNCTION app.prune_attempts(p_older_than_secs integer, p_batch integer) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_before timestamptz := now() - make_interval(secs => greatest(p_older_than_secs, 3600));
    v_deleted integer;
BEGIN
    DELETE FROM auth.attempts AS a
    WHERE a.id IN (SELECT o.id FROM auth.attempts AS o
                   WHERE o.created_at < v_before
                   ORDER BY o.created_at LIMIT p_batch);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END
$$;

REVOKE EXECUTE ON FUNCTION
    app.login_throttle(text, text, integer, integer, integer, integer, integer),
    app.clear_login_failures(text, text, bigint[]),
    app.login_lookup(text, text, integer, integer, integer, integer, integer),
    app.complete_login(text, text, bigint[], uuid, uuid, bytea, timestamptz),
    app.registration_attempt(text, text, integer),
    app.bootstrap_open(),
    app.invitation_tenant_active(bytea),
    app.prune_attempts(integer, integer)
FROM PUBLIC;
-- The credential flows' functions: rowguard_auth only (V8).
GRANT EXECUTE ON FUNCTION
    app.login_throttle(text, text, integer, integer, integer, integer, integer),
    app.clear_login_failures(text, text, bigint[]),
    app.login_lookup(text, text, integer, integer, integer, integer, integer),
    app.complete_login(text, text, bigint[], uuid, uuid, bytea, timestamptz),
    app.registration_attempt(text, text, integer),
    app.bootstrap_open(),
    app.invitation_tenant_active(bytea),
    app.prune_attempts(integer, integer)
TO rowguard_auth;
