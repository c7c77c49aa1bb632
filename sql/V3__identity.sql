-- Identity: sessions (refresh tokens), password resets, login throttling, and the
-- notification outbox that carries tokens to their owners.
--
-- Everything secret lives in schema `auth`, which the runtime role cannot enter. The
-- runtime role reaches it only through the SECURITY DEFINER functions below, each of
-- which answers exactly what one step of an identity flow needs, with a fixed
-- search_path and schema-qualified names (DESIGN.md invariant 6). Functions that act
-- for "the current user" read app.user_id from the request context, which the server
-- sets only after it has authenticated the user: they take no user id a caller could
-- choose.
--
-- Tokens are stored as SHA-256 hashes only: they are 256-bit random values, so a fast
-- hash is enough, and a leaked table gives nothing to present.

-- A refresh token belongs to a family (a login session); rotating it adds the next
-- one to the family. A token used twice means it was stolen: the whole family is
-- revoked.
CREATE TABLE auth.refresh_tokens (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    family_id  uuid NOT NULL,
    user_id    uuid NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    tenant_id  uuid NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON auth.refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON auth.refresh_tokens (user_id);

CREATE TABLE auth.password_reset_tokens (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

-- Failed logins and reset requests, counted over a sliding window. Kept in the
-- database so that every server process shares the count.
CREATE TABLE auth.attempts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('login_email', 'login_client', 'forgot_email')),
    subject    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attempts_subject_idx ON auth.attempts (kind, subject, created_at);
CREATE INDEX attempts_created_idx ON auth.attempts (created_at);

-- Messages to send (by a later module: email). Written in the same transaction as the
-- change that causes them; the runtime role has no access, only definer functions.
CREATE TABLE notification_outbox (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    recipient  text NOT NULL,
    template   text NOT NULL,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX notification_outbox_unsent_idx ON notification_outbox (created_at) WHERE sent_at IS NULL;

-- Who registers is remembered per membership: login picks the tenant used last.
CREATE INDEX tenant_users_last_used_idx ON tenant_users (user_id, last_used_at DESC NULLS LAST);

-- Creating users -----------------------------------------------------------------

-- Registration: a new user with a password. The unique index users_email_key makes
-- two concurrent registrations of one email fail in all but one transaction.
CREATE FUNCTION app.create_user(p_id uuid, p_email text, p_full_name text, p_password_hash text)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO public.users (id, email, full_name) VALUES (p_id, p_email, p_full_name);
    INSERT INTO auth.user_credentials (user_id, password_hash) VALUES (p_id, p_password_hash);
$$;

-- Bootstrap: the first user, a platform admin. Closed for good once any user exists;
-- the transaction-scoped advisory lock makes concurrent callers take turns, so the
-- second sees the first's user and gets false.
CREATE FUNCTION app.bootstrap_user(p_id uuid, p_email text, p_full_name text, p_password_hash text)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7526375837465231);
    IF EXISTS (SELECT 1 FROM public.users) THEN
        RETURN false;
    END IF;
    INSERT INTO public.users (id, email, full_name, is_platform_admin)
    VALUES (p_id, p_email, p_full_name, true);
    INSERT INTO auth.user_credentials (user_id, password_hash) VALUES (p_id, p_password_hash);
    RETURN true;
END
$$;

-- The system roles of a new tenant, in the current tenant context. SECURITY INVOKER:
-- it runs under the tenant's row-level security like any request. Returns the id of
-- the Owner role.
CREATE FUNCTION app.create_system_roles() RETURNS uuid
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_tenant uuid := app.current_tenant_id();
    v_owner uuid := gen_random_uuid();
    v_admin uuid := gen_random_uuid();
    v_manager uuid := gen_random_uuid();
    v_staff uuid := gen_random_uuid();
BEGIN
    INSERT INTO public.roles (tenant_id, id, name, description, is_system) VALUES
        (v_tenant, v_owner, 'Owner', 'Every permission; cannot be changed; a tenant always keeps one', true),
        (v_tenant, v_admin, 'Admin', 'Runs the tenant: everything but editing the tenant itself', true),
        (v_tenant, v_manager, 'Store Manager', 'Runs stores: their staff, products and inventory', true),
        (v_tenant, v_staff, 'Staff', 'Works in a store: sees products, keeps inventory', true);
    INSERT INTO public.role_permissions (tenant_id, role_id, permission_code)
    SELECT v_tenant, v_owner, p.code FROM public.permissions AS p
    UNION ALL
    SELECT v_tenant, v_admin, p.code FROM public.permissions AS p WHERE p.code <> 'tenants.edit'
    UNION ALL
    SELECT v_tenant, v_manager, p.code FROM public.permissions AS p
    WHERE p.code IN ('tenants.view', 'users.view', 'stores.view', 'stores.edit', 'stores.assign_users',
                     'roles.view', 'products.view', 'products.create', 'products.edit',
                     'inventory.view', 'inventory.adjust')
    UNION ALL
    SELECT v_tenant, v_staff, p.code FROM public.permissions AS p
    WHERE p.code IN ('tenants.view', 'stores.view', 'products.view', 'inventory.view', 'inventory.adjust');
    RETURN v_owner;
END
$$;

-- Login -----------------------------------------------------------------------------

-- One call answers login's first question: is this email or client throttled, and if
-- not, whose hash to verify. retry_after_secs > 0 means throttled (and nothing else is
-- answered). Otherwise the attempt is recorded as a failure *before* the password is
-- verified, under a per-email and per-client lock, so that parallel guesses cannot all
-- read a count below the limit; a successful login takes it back (app.complete_login,
-- with client_attempt_id).
CREATE FUNCTION app.login_lookup(
    p_email text, p_client text, p_window_secs integer, p_max_per_email integer, p_max_per_client integer)
    RETURNS TABLE (retry_after_secs integer, user_id uuid, user_status text, password_hash text,
                   client_attempt_id bigint)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_since timestamptz := now() - make_interval(secs => p_window_secs);
    v_oldest timestamptz;
BEGIN
    -- Email first, then client: every caller takes them in this order, so no deadlock.
    PERFORM pg_advisory_xact_lock(hashtextextended('rowguard.login.email:' || p_email, 0));
    PERFORM pg_advisory_xact_lock(hashtextextended('rowguard.login.client:' || p_client, 0));
    -- Throttled until the oldest attempt counted leaves the window (attempts are not
    -- recorded while throttled, so a count never exceeds its limit).
    SELECT least(
        (SELECT min(a.created_at) FROM auth.attempts AS a
         WHERE a.kind = 'login_email' AND a.subject = p_email AND a.created_at > v_since
         HAVING count(*) >= p_max_per_email),
        (SELECT min(a.created_at) FROM auth.attempts AS a
         WHERE a.kind = 'login_client' AND a.subject = p_client AND a.created_at > v_since
         HAVING count(*) >= p_max_per_client))
    INTO v_oldest;
    IF v_oldest IS NOT NULL THEN
        retry_after_secs := greatest(1, ceil(extract(epoch FROM v_oldest + make_interval(secs => p_window_secs) - now()))::integer);
        RETURN NEXT;
        RETURN;
    END IF;
    retry_after_secs := 0;
    INSERT INTO auth.attempts (kind, subject) VALUES ('login_email', p_email);
    INSERT INTO auth.attempts (kind, subject) VALUES ('login_client', p_client)
    RETURNING id INTO client_attempt_id;
    -- Forget what no window can count any more (now and then, not on every call).
    IF random() < 0.01 THEN
        DELETE FROM auth.attempts AS a WHERE a.created_at < now() - interval '1 day';
    END IF;
    SELECT u.id, u.status, c.password_hash INTO user_id, user_status, password_hash
    FROM public.users AS u JOIN auth.user_credentials AS c ON c.user_id = u.id
    WHERE u.email = p_email;
    RETURN NEXT;
END
$$;

-- The current user's memberships, across tenants (tenant_users shows only the current
-- tenant's rows to the runtime role). Used by login, tenant switch and /me.
CREATE FUNCTION app.current_user_memberships()
    RETURNS TABLE (tenant_id uuid, tenant_name text, tenant_status text, member_status text,
                   last_used_at timestamptz, joined_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.id, t.name, t.status, tu.status, tu.last_used_at, tu.created_at
    FROM public.tenant_users AS tu JOIN public.tenants AS t ON t.id = tu.tenant_id
    WHERE tu.user_id = app.current_user_id()
    ORDER BY tu.last_used_at DESC NULLS LAST, tu.created_at, t.id
$$;

-- The rest of a login, once the password is verified, in one statement: clear the
-- email's failures and this attempt of the client address, pick the tenant (the requested one, else the one used last, else
-- the first joined), and start a session there. outcome: ok | not_member (the
-- requested tenant) | no_membership | suspended (tenant or membership).
CREATE FUNCTION app.complete_login(
    p_email text, p_client_attempt_id bigint, p_requested_tenant uuid, p_family_id uuid,
    p_token_hash bytea, p_expires_at timestamptz)
    RETURNS TABLE (outcome text, tenant_id uuid)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid := app.current_user_id();
    v_tenant uuid;
    v_tenant_status text;
    v_member_status text;
BEGIN
    DELETE FROM auth.attempts AS a
    WHERE (a.kind = 'login_email' AND a.subject = p_email) OR a.id = p_client_attempt_id;
    SELECT tu.tenant_id, t.status, tu.status INTO v_tenant, v_tenant_status, v_member_status
    FROM public.tenant_users AS tu JOIN public.tenants AS t ON t.id = tu.tenant_id
    WHERE tu.user_id = v_user AND (p_requested_tenant IS NULL OR tu.tenant_id = p_requested_tenant)
    ORDER BY tu.last_used_at DESC NULLS LAST, tu.created_at, t.id
    LIMIT 1;
    tenant_id := v_tenant;
    IF v_tenant IS NULL THEN
        outcome := CASE WHEN p_requested_tenant IS NULL THEN 'no_membership' ELSE 'not_member' END;
    ELSIF v_tenant_status <> 'active' OR v_member_status <> 'active' THEN
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

-- Sessions --------------------------------------------------------------------------

-- Starts or continues a session of the current user in the current tenant, and
-- remembers the tenant as the one used last.
CREATE FUNCTION app.issue_refresh_token(p_family_id uuid, p_token_hash bytea, p_expires_at timestamptz)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO auth.refresh_tokens (family_id, user_id, tenant_id, token_hash, expires_at)
    VALUES (p_family_id, app.current_user_id(), app.current_tenant_id(), p_token_hash, p_expires_at);
    UPDATE public.tenant_users SET last_used_at = now()
    WHERE tenant_id = app.current_tenant_id() AND user_id = app.current_user_id();
$$;

-- Rotation. outcome: ok | invalid | expired | reused | revoked | removed | suspended.
-- The row lock makes two concurrent uses of one token take turns: the second one sees
-- it used, and revokes the family.
CREATE FUNCTION app.rotate_refresh_token(p_token_hash bytea, p_new_hash bytea, p_expires_at timestamptz)
    RETURNS TABLE (outcome text, user_id uuid, tenant_id uuid, family_id uuid)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v auth.refresh_tokens%ROWTYPE;
    v_member text;
BEGIN
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

-- Logout: the session (family) of the token ends.
CREATE FUNCTION app.revoke_refresh_family(p_token_hash bytea) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE auth.refresh_tokens SET revoked_at = now()
    WHERE revoked_at IS NULL
      AND family_id = (SELECT r.family_id FROM auth.refresh_tokens AS r WHERE r.token_hash = p_token_hash);
$$;

-- Whether a session (refresh-token family) of the context user is still alive: not
-- logged out, not revoked by a reset, a password change or a reuse, not expired.
-- Switching tenants starts a new session only from a live one.
CREATE FUNCTION app.session_active(p_family_id uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT 1 FROM auth.refresh_tokens AS r
        WHERE r.family_id = p_family_id AND r.user_id = app.current_user_id()
          AND r.revoked_at IS NULL AND r.used_at IS NULL AND r.expires_at > now())
$$;

-- A member removed from the context tenant loses their sessions there, so that a
-- later re-invitation does not bring an old refresh token back to life.
CREATE FUNCTION app.revoke_member_sessions(p_user_id uuid) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE auth.refresh_tokens SET revoked_at = now()
    WHERE tenant_id = app.current_tenant_id() AND user_id = p_user_id AND revoked_at IS NULL;
$$;

-- Passwords -------------------------------------------------------------------------

CREATE FUNCTION app.current_user_password_hash() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.password_hash FROM auth.user_credentials AS c WHERE c.user_id = app.current_user_id()
$$;

-- A password change ends every other session of the user.
CREATE FUNCTION app.set_current_user_password(p_password_hash text, p_keep_family_id uuid) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE auth.user_credentials SET password_hash = p_password_hash, updated_at = now()
    WHERE user_id = app.current_user_id();
    UPDATE auth.refresh_tokens SET revoked_at = now()
    WHERE user_id = app.current_user_id() AND revoked_at IS NULL
      AND family_id IS DISTINCT FROM p_keep_family_id;
    UPDATE auth.password_reset_tokens SET used_at = now()
    WHERE user_id = app.current_user_id() AND used_at IS NULL;
$$;

-- Forgot-password: at most p_max_per_hour requests per email are acted on; unknown
-- emails are counted the same way and do nothing, so the caller cannot tell them
-- apart. The token reaches its owner through the outbox only.
CREATE FUNCTION app.request_password_reset(
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
    INSERT INTO auth.attempts (kind, subject) VALUES ('forgot_email', p_email);
    IF v_recent >= p_max_per_hour THEN
        RETURN;
    END IF;
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

-- The email of a reset token's user while the token is usable (to check the new
-- password against it), else NULL.
CREATE FUNCTION app.password_reset_email(p_token_hash bytea) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.email FROM auth.password_reset_tokens AS t JOIN public.users AS u ON u.id = t.user_id
    WHERE t.token_hash = p_token_hash AND t.used_at IS NULL AND t.expires_at > now()
$$;

-- Uses a reset token once: sets the password and ends every session of the user.
-- outcome: ok | invalid | used | expired.
CREATE FUNCTION app.reset_password(p_token_hash bytea, p_password_hash text) RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v auth.password_reset_tokens%ROWTYPE;
BEGIN
    SELECT * INTO v FROM auth.password_reset_tokens AS t WHERE t.token_hash = p_token_hash FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'invalid';
    ELSIF v.used_at IS NOT NULL THEN
        RETURN 'used';
    ELSIF v.expires_at <= now() THEN
        RETURN 'expired';
    END IF;
    -- Every outstanding reset token of the user ends with this one.
    UPDATE auth.password_reset_tokens AS t SET used_at = now() WHERE t.user_id = v.user_id AND t.used_at IS NULL;
    UPDATE auth.user_credentials SET password_hash = p_password_hash, updated_at = now()
    WHERE user_id = v.user_id;
    UPDATE auth.refresh_tokens SET revoked_at = now() WHERE user_id = v.user_id AND revoked_at IS NULL;
    RETURN 'ok';
END
$$;

-- Rights: the runtime role may call these and nothing else in auth.
REVOKE EXECUTE ON FUNCTION
    app.create_user(uuid, text, text, text),
    app.bootstrap_user(uuid, text, text, text),
    app.create_system_roles(),
    app.login_lookup(text, text, integer, integer, integer),
    app.complete_login(text, bigint, uuid, uuid, bytea, timestamptz),
    app.current_user_memberships(),
    app.issue_refresh_token(uuid, bytea, timestamptz),
    app.rotate_refresh_token(bytea, bytea, timestamptz),
    app.revoke_refresh_family(bytea),
    app.session_active(uuid),
    app.revoke_member_sessions(uuid),
    app.current_user_password_hash(),
    app.set_current_user_password(text, uuid),
    app.request_password_reset(text, text, bytea, timestamptz, integer),
    app.password_reset_email(bytea),
    app.reset_password(bytea, text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    app.create_user(uuid, text, text, text),
    app.bootstrap_user(uuid, text, text, text),
    app.create_system_roles(),
    app.login_lookup(text, text, integer, integer, integer),
    app.complete_login(text, bigint, uuid, uuid, bytea, timestamptz),
    app.current_user_memberships(),
    app.issue_refresh_token(uuid, bytea, timestamptz),
    app.rotate_refresh_token(bytea, bytea, timestamptz),
    app.revoke_refresh_family(bytea),
    app.session_active(uuid),
    app.revoke_member_sessions(uuid),
    app.current_user_password_hash(),
    app.set_current_user_password(text, uuid),
    app.request_password_reset(text, text, bytea, timestamptz, integer),
    app.password_reset_email(bytea),
    app.reset_password(bytea, text)
TO rowguard_api;
