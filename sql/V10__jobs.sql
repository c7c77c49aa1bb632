-- The job queue (docs/design.md invariant 10), email as jobs, and email verification.
--
-- A job is a row of `jobs`, inserted in the transaction of the change that causes it
-- (a rolled-back request leaves no job). Workers, in any number of processes, claim
-- due jobs with FOR UPDATE SKIP LOCKED and hold them under a lease: a random key and a
-- deadline. The job's work runs in its own transaction (a tenant's job with that
-- tenant's context, under row-level security, like a request), which completes the
-- job by presenting the lease: the work and the completion commit together, and a
-- worker whose lease was taken over (it stalled past the deadline, another worker
-- claimed the job) finds its completion refused and rolls its work back.
--
-- Who may do what:
--   * rowguard_api (requests, and the transactions jobs run in) enqueues jobs of its
--     own tenant context and completes a job whose lease it holds. It cannot read the
--     queue: payloads carry secrets (a reset token until its email is accepted).
--   * rowguard_auth (the credential flows' role, which request sessions can never
--     become) is the queue's machinery: claims, heartbeats, failures, releases,
--     schedules, sweeps over tenants, the platform's view of the queue.
--
-- The outbox of V3/V4 becomes the email job: app.enqueue_notification and
-- app.request_password_reset keep their signatures and now enqueue `email.send` jobs;
-- unsent outbox rows move to the queue, and the outbox is dropped.

CREATE TABLE jobs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The tenant the job acts for (its transaction's context); NULL: a platform job
    -- (a sweep, an email that concerns a user rather than a tenant).
    tenant_id    uuid REFERENCES tenants (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    -- Its key `secret` (a token an email carries) is erased when the job succeeds.
    payload      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    state        text NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'running', 'failed', 'succeeded', 'dead')),
    -- When it may run next: enqueued for, or retried at.
    run_at       timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts integer NOT NULL DEFAULT 10 CHECK (max_attempts BETWEEN 1 AND 100),
    -- A job is enqueued once while it is live (queued, running, failed) per key.
    unique_key   text,
    -- The current claim: its key (whoever completes must present it), its holder (a
    -- worker's name, for operators), and the deadline after which another may take it.
    lease        uuid,
    locked_by    text,
    locked_until timestamptz,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    -- docs/design.md invariant 5: tenant_id in a unique key.
    UNIQUE (tenant_id, id),
    CHECK ((state = 'running') = (lease IS NOT NULL))
);

-- What a worker claims: due jobs, oldest first.
CREATE INDEX jobs_due_idx ON jobs (run_at, id) WHERE state IN ('queued', 'failed');
-- Leases to take over.
CREATE INDEX jobs_leased_idx ON jobs (locked_until) WHERE state = 'running';
-- Unique keys are per tenant (NULLS NOT DISTINCT: one per key among platform jobs too),
-- so that no tenant's key can hold back another's job.
CREATE UNIQUE INDEX jobs_unique_live_idx ON jobs (tenant_id, unique_key) NULLS NOT DISTINCT
    WHERE unique_key IS NOT NULL AND state IN ('queued', 'running', 'failed');
-- The platform's view: by state, newest first.
CREATE INDEX jobs_state_idx ON jobs (state, id DESC);
CREATE INDEX jobs_tenant_idx ON jobs (tenant_id) WHERE tenant_id IS NOT NULL;

-- Periodic schedules: the last period each kind was fired for. A scheduler fires a
-- period only if it moves this forward, so N processes' schedulers fire it once.
CREATE TABLE job_schedules (
    kind        text PRIMARY KEY,
    last_period timestamptz NOT NULL
);

-- The kinds a request may enqueue (a module's migration lists its own). Everything
-- else is enqueued by the machinery: email through the flows' functions below,
-- periodic and platform jobs by the schedulers and `rowguard jobs run`.
CREATE TABLE app.request_job_kinds (
    kind text PRIMARY KEY CHECK (kind ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$')
);

-- Enqueues a job for the current tenant, in the caller's transaction: a kind requests
-- may enqueue, an object payload of at most 64 KiB, not before now (a job cannot jump
-- the queue), at most 25 attempts, and its unique key in the requests' namespace
-- (`request:`), so that no request can take a key the machinery will use (a sweep's
-- fan-out, a period). Returns its id, or NULL when a live job has the same key.
CREATE FUNCTION app.enqueue_job(
    p_kind text, p_payload jsonb, p_unique_key text, p_run_at timestamptz, p_max_attempts integer)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant uuid := app.current_tenant_id();
    v_id bigint;
BEGIN
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'a request enqueues jobs of its tenant only' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM app.request_job_kinds AS k WHERE k.kind = p_kind) THEN
        RAISE EXCEPTION 'requests may not enqueue % jobs', p_kind USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF jsonb_typeof(p_payload) IS DISTINCT FROM 'object' OR octet_length(p_payload::text) > 65536 THEN
        RAISE EXCEPTION 'a job payload is an object of at most 64 KiB' USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO public.jobs (tenant_id, kind, payload, unique_key, run_at, max_attempts)
    VALUES (v_tenant, p_kind, p_payload, 'request:' || p_unique_key,
            greatest(coalesce(p_run_at, now()), now()), least(greatest(coalesce(p_max_attempts, 10), 1), 25))
    ON CONFLICT (tenant_id, unique_key)
        WHERE unique_key IS NOT NULL AND state IN ('queued', 'running', 'failed')
        DO NOTHING
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

-- A platform job (no tenant), from the machinery: `rowguard jobs run`.
CREATE FUNCTION app.enqueue_platform_job(
    p_kind text, p_payload jsonb, p_unique_key text, p_run_at timestamptz, p_max_attempts integer)
    RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO public.jobs (tenant_id, kind, payload, unique_key, run_at, max_attempts)
    VALUES (NULL, p_kind, coalesce(p_payload, '{}'), p_unique_key, coalesce(p_run_at, now()),
            coalesce(p_max_attempts, 10))
    ON CONFLICT (tenant_id, unique_key)
        WHERE unique_key IS NOT NULL AND state IN ('queued', 'running', 'failed')
        DO NOTHING
    RETURNING id
$$;

-- Claims up to p_limit due jobs (of p_kinds, or any kind when NULL) for p_worker, each
-- under a new lease until p_now + p_lease_secs: queued and failed jobs whose time has
-- come, and running jobs whose lease ran out (their worker died or stalled). A job
-- whose lease ran out on its last attempt is dead instead: it was tried enough.
CREATE FUNCTION app.claim_jobs(
    p_worker text, p_kinds text[], p_limit integer, p_lease_secs integer, p_now timestamptz)
    RETURNS TABLE (id bigint, tenant_id uuid, kind text, payload jsonb, attempts integer,
                   max_attempts integer, lease uuid)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE public.jobs AS j
    SET state = 'dead', finished_at = p_now, lease = NULL, locked_by = NULL, locked_until = NULL,
        last_error = coalesce(j.last_error || '; ', '') || 'its lease ran out on its last attempt'
    WHERE j.id IN (SELECT x.id FROM public.jobs AS x
                   WHERE x.state = 'running' AND x.locked_until < p_now AND x.attempts >= x.max_attempts
                     AND (p_kinds IS NULL OR x.kind = ANY (p_kinds))
                   FOR UPDATE SKIP LOCKED);
    -- Two index scans, each in the order of its index (an OR of the two conditions
    -- scanned and sorted the whole table: 2.8 ms a claim with 10,000 queued,
    -- bench/jobs.rs): leases that ran out first, then due jobs, oldest first.
    RETURN QUERY
    WITH expired AS (
        SELECT x.id FROM public.jobs AS x
        WHERE x.state = 'running' AND x.locked_until < p_now
          AND (p_kinds IS NULL OR x.kind = ANY (p_kinds))
        ORDER BY x.locked_until
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), due AS (
        SELECT x.id FROM public.jobs AS x
        WHERE x.state IN ('queued', 'failed') AND x.run_at <= p_now
          AND (p_kinds IS NULL OR x.kind = ANY (p_kinds))
        ORDER BY x.run_at, x.id
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), next AS (
        SELECT e.id FROM expired AS e
        UNION ALL
        SELECT d.id FROM due AS d
        LIMIT p_limit
    )
    UPDATE public.jobs AS j
    SET state = 'running', attempts = j.attempts + 1, lease = gen_random_uuid(),
        locked_by = p_worker, locked_until = p_now + make_interval(secs => p_lease_secs)
    FROM next WHERE j.id = next.id
    RETURNING j.id, j.tenant_id, j.kind, j.payload, j.attempts, j.max_attempts, j.lease;
END
$$;

-- Completes a job, in the transaction of its work, if the caller still holds its
-- lease; erases the payload's secret. A lost lease (taken over by another worker, or
-- released) raises `RGJ01`, which aborts the transaction: the work rolls back with it,
-- even when the caller commits next in the same round trip.
CREATE FUNCTION app.complete_job(p_id bigint, p_lease uuid) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE public.jobs
    SET state = 'succeeded', finished_at = now(), payload = payload - 'secret',
        lease = NULL, locked_by = NULL, locked_until = NULL
    WHERE id = p_id AND lease = p_lease AND state = 'running';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % is no longer held by this lease', p_id USING ERRCODE = 'RGJ01';
    END IF;
END
$$;

-- A failed attempt: retried at p_retry_at, or dead when it was the last attempt or the
-- failure is permanent. Returns the job's new state, NULL if the lease was lost.
CREATE FUNCTION app.fail_job(
    p_id bigint, p_lease uuid, p_error text, p_retry_at timestamptz, p_permanent boolean)
    RETURNS text
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE public.jobs
    SET state = CASE WHEN p_permanent OR attempts >= max_attempts THEN 'dead' ELSE 'failed' END,
        run_at = CASE WHEN p_permanent OR attempts >= max_attempts THEN run_at ELSE p_retry_at END,
        finished_at = CASE WHEN p_permanent OR attempts >= max_attempts THEN now() END,
        last_error = left(p_error, 2000), lease = NULL, locked_by = NULL, locked_until = NULL
    WHERE id = p_id AND lease = p_lease AND state = 'running'
    RETURNING state
$$;

-- Extends the leases a worker still holds (its heartbeat); returns those it holds.
CREATE FUNCTION app.extend_job_leases(p_leases uuid[], p_lease_secs integer)
    RETURNS SETOF uuid
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE public.jobs SET locked_until = now() + make_interval(secs => p_lease_secs)
    WHERE lease = ANY (p_leases) AND state = 'running'
    RETURNING lease
$$;

-- Gives back jobs a stopping worker did not run to the end: queued again, this attempt
-- not counted.
CREATE FUNCTION app.release_jobs(p_leases uuid[]) RETURNS integer
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH released AS (
        UPDATE public.jobs
        SET state = 'queued', attempts = greatest(attempts - 1, 0), lease = NULL,
            locked_by = NULL, locked_until = NULL
        WHERE lease = ANY (p_leases) AND state = 'running'
        RETURNING 1
    )
    SELECT count(*)::integer FROM released
$$;

-- Fires period p_period of the periodic kind p_kind: enqueues its platform job, unless
-- any process fired this period (or a later one) already. Returns the job's id, NULL
-- when it was fired before.
CREATE FUNCTION app.fire_schedule(p_kind text, p_period timestamptz, p_payload jsonb)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO public.job_schedules AS s (kind, last_period) VALUES (p_kind, p_period)
    ON CONFLICT (kind) DO UPDATE SET last_period = excluded.last_period
        WHERE s.last_period < excluded.last_period;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO public.jobs (tenant_id, kind, payload, unique_key, run_at)
    VALUES (NULL, p_kind, coalesce(p_payload, '{}'),
            p_kind || '@' || to_char(p_period AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), now())
    ON CONFLICT (tenant_id, unique_key)
        WHERE unique_key IS NOT NULL AND state IN ('queued', 'running', 'failed')
        DO NOTHING
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

-- A sweep's fan-out: one job of p_kind per active tenant, discovered in this one
-- query, each keyed p_unique_key within its tenant (a sweep run twice enqueues once).
-- Returns how many were enqueued.
CREATE FUNCTION app.enqueue_for_active_tenants(
    p_kind text, p_payload jsonb, p_unique_key text, p_run_at timestamptz)
    RETURNS integer
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH enqueued AS (
        INSERT INTO public.jobs (tenant_id, kind, payload, unique_key, run_at)
        SELECT t.id, p_kind, coalesce(p_payload, '{}'), p_unique_key, coalesce(p_run_at, now())
        FROM public.tenants AS t WHERE t.status = 'active'
        ON CONFLICT (tenant_id, unique_key)
            WHERE unique_key IS NOT NULL AND state IN ('queued', 'running', 'failed')
            DO NOTHING
        RETURNING 1
    )
    SELECT count(*)::integer FROM enqueued
$$;

-- The queue as operators see it: newest first, keyset by id, without secrets.
CREATE FUNCTION app.jobs_page(p_state text, p_before_id bigint, p_limit integer)
    RETURNS TABLE (id bigint, tenant_id uuid, kind text, payload jsonb, state text,
                   run_at timestamptz, attempts integer, max_attempts integer,
                   unique_key text, locked_by text, locked_until timestamptz,
                   last_error text, created_at timestamptz, finished_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT j.id, j.tenant_id, j.kind, j.payload - 'secret', j.state, j.run_at, j.attempts,
           j.max_attempts, j.unique_key, j.locked_by, j.locked_until, j.last_error,
           j.created_at, j.finished_at
    FROM public.jobs AS j
    WHERE (p_state IS NULL OR j.state = p_state) AND (p_before_id IS NULL OR j.id < p_before_id)
    ORDER BY j.id DESC
    LIMIT p_limit
$$;

-- Whether any job (of p_kinds, or any) is due by p_now or running: `rowguard jobs run`
-- drains the queue until there is none.
CREATE FUNCTION app.jobs_due(p_kinds text[], p_now timestamptz) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM public.jobs AS j
                   WHERE ((j.state IN ('queued', 'failed') AND j.run_at <= p_now) OR j.state = 'running')
                     AND (p_kinds IS NULL OR j.kind = ANY (p_kinds)))
$$;

-- Makes the jobs of p_kind that wait for a retry due at p_now (`notifications.deliver`:
-- after an SMTP outage, emails need not sit out their backoff). Returns how many.
CREATE FUNCTION app.expedite_jobs(p_kind text, p_now timestamptz) RETURNS integer
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH expedited AS (
        UPDATE public.jobs SET run_at = p_now
        WHERE kind = p_kind AND state = 'failed' AND run_at > p_now
        RETURNING 1
    )
    SELECT count(*)::integer FROM expedited
$$;

-- Forgets finished jobs: succeeded a day ago (their secrets are gone already), dead a
-- month ago (long enough to look at and retry), at most p_batch at a time. Returns how
-- many. The hourly `jobs.prune`.
CREATE FUNCTION app.prune_jobs(p_now timestamptz, p_batch integer) RETURNS integer
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH pruned AS (
        DELETE FROM public.jobs
        WHERE id IN (SELECT j.id FROM public.jobs AS j
                     WHERE (j.state = 'succeeded' AND j.finished_at < p_now - interval '1 day')
                        OR (j.state = 'dead' AND j.finished_at < p_now - interval '30 days')
                     LIMIT p_batch)
        RETURNING 1
    )
    SELECT count(*)::integer FROM pruned
$$;
CREATE INDEX jobs_finished_idx ON jobs (finished_at) WHERE state IN ('succeeded', 'dead');

-- Runs a failed or dead job again now, with one more attempt if it had used them all.
-- Returns the job (as jobs_page shows it), nothing when there is no such job to retry.
CREATE FUNCTION app.retry_job(p_id bigint)
    RETURNS SETOF bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE public.jobs
    SET state = 'queued', run_at = now(), finished_at = NULL,
        max_attempts = greatest(max_attempts, least(attempts + 1, 100))
    WHERE id = p_id AND state IN ('failed', 'dead')
    RETURNING id
$$;

-- Whether the caller (the user of the request's context) is a platform admin: the
-- platform routes answer 403 otherwise, and read the queue through the machinery
-- (rowguard_auth) only after this said yes.
CREATE FUNCTION app.current_user_is_platform_admin() RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT u.is_platform_admin AND u.status = 'active' FROM public.users AS u
                     WHERE u.id = app.current_user_id()), false)
$$;

-- Email: the outbox becomes the email job ------------------------------------------------

-- An email job's payload: {to, template, data, link, secret}. `link` names the console
-- page its link leads to, `secret` the token that link carries (erased once the
-- message is accepted). Same signature as V4's, so its callers are unchanged.
CREATE FUNCTION app.email_job_payload(p_recipient text, p_template text, p_payload jsonb)
    RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'to', p_recipient, 'template', p_template,
        'data', coalesce(p_payload, '{}') - 'token',
        'link', CASE p_template WHEN 'invitation' THEN 'accept-invitation'
                                WHEN 'password_reset' THEN 'reset-password'
                                WHEN 'email_verification' THEN 'verify-email' END,
        'secret', p_payload ->> 'token'))
$$;

-- An instant as emails write it: `2026-12-01 14:00 UTC`.
CREATE FUNCTION app.email_time(p_at timestamptz) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$ SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"') $$;

CREATE OR REPLACE FUNCTION app.enqueue_notification(p_recipient text, p_template text, p_payload jsonb)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO public.jobs (tenant_id, kind, payload)
    VALUES (app.current_tenant_id(), 'email.send',
            app.email_job_payload(p_recipient, p_template, p_payload));
$$;

-- As in V9, the reset email now an email job.
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
    PERFORM app.enqueue_notification(p_email, 'password_reset',
        jsonb_build_object('user_id', v_user, 'token', p_token,
                           'expires_at', app.email_time(p_expires_at)));
END
$$;

-- The outbox's unsent messages go to the queue (with no tenant: the outbox had none);
-- what was sent is history nobody reads.
INSERT INTO public.jobs (tenant_id, kind, payload, created_at)
SELECT NULL, 'email.send', app.email_job_payload(o.recipient, o.template, o.payload), o.created_at
FROM public.notification_outbox AS o WHERE o.sent_at IS NULL;
DROP TABLE public.notification_outbox;

-- Email verification ------------------------------------------------------------------

-- When the user proved they receive mail at their address (NULL: not yet).
ALTER TABLE public.users ADD COLUMN email_verified_at timestamptz;

CREATE TABLE auth.email_verification_tokens (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    -- The address it proves: a token for an address the user no longer has proves nothing.
    email      text NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_verification_tokens_user_idx ON auth.email_verification_tokens (user_id);

-- A token of 32 random bytes' worth (two v4 UUIDs: 244 random bits), written as the
-- opaque tokens of the server are (43 characters of URL-safe base64), and its hash.
-- Made here, so that no caller chooses a token it could then present.
CREATE FUNCTION app.new_opaque_token(OUT token text, OUT token_hash bytea)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    token := rtrim(translate(encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'base64'),
                             '+/', '-_'), '=');
    token := left(token, 43);
    token_hash := sha256(convert_to(token, 'UTF8'));
END
$$;

-- A verification email for the user of the current context (a request of theirs, or a
-- credential flow that has just created them), unless verified already: valid three
-- days, at most five per user per hour (the route is open to any signed-in user). The
-- token is made here and travels only in the email job. Returns whether one was sent.
CREATE FUNCTION app.request_email_verification() RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user public.users%ROWTYPE;
    v_token record;
    v_expires timestamptz := now() + interval '3 days';
BEGIN
    SELECT * INTO v_user FROM public.users AS u
    WHERE u.id = app.current_user_id() AND u.status = 'active' AND u.email_verified_at IS NULL;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('rowguard.verify:' || v_user.id::text, 0));
    IF (SELECT count(*) FROM auth.email_verification_tokens AS t
        WHERE t.user_id = v_user.id AND t.created_at > now() - interval '1 hour') >= 5 THEN
        RETURN false;
    END IF;
    v_token := app.new_opaque_token();
    INSERT INTO auth.email_verification_tokens (token_hash, user_id, email, expires_at)
    VALUES (v_token.token_hash, v_user.id, v_user.email, v_expires);
    PERFORM app.enqueue_notification(v_user.email, 'email_verification',
        jsonb_build_object('token', v_token.token,
                           'expires_at', app.email_time(v_expires)));
    RETURN true;
END
$$;

-- The invitation email, for an invitation of the current tenant and the token whose
-- hash it stores (app.set_invitation_token): its recipient, tenant, role and inviter
-- come from the invitation, so a request can send no other text to no other address.
CREATE FUNCTION app.send_invitation_email(p_invitation_id uuid, p_token text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v record;
BEGIN
    SELECT i.email, i.expires_at, t.name AS tenant_name, r.name AS role_name,
           coalesce(u.full_name, t.name) AS inviter_name
    INTO v
    FROM public.invitations AS i
    JOIN auth.invitation_tokens AS k ON k.invitation_id = i.id AND k.tenant_id = i.tenant_id
    JOIN public.tenants AS t ON t.id = i.tenant_id
    JOIN public.roles AS r ON r.tenant_id = i.tenant_id AND r.id = i.role_id
    LEFT JOIN public.users AS u ON u.id = i.invited_by
    WHERE i.tenant_id = app.current_tenant_id() AND i.id = p_invitation_id
      AND k.token_hash = sha256(convert_to(p_token, 'UTF8'))
      AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now();
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM app.enqueue_notification(v.email, 'invitation',
        jsonb_build_object('token', p_token, 'tenant_id', app.current_tenant_id(),
                           'tenant_name', v.tenant_name, 'role_name', v.role_name,
                           'inviter_name', v.inviter_name,
                           'expires_at', app.email_time(v.expires_at)));
    RETURN true;
END
$$;

-- The email of a notification (notifications::notify) to a member of the current
-- tenant, for the kinds of notification that have one: the recipient is the member,
-- the template one of these, and the data carries no link (links are the email job's
-- to make, from a token of the flow's own).
CREATE FUNCTION app.send_member_email(p_user_id uuid, p_template text, p_data jsonb) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_email text;
BEGIN
    IF p_template NOT IN ('invitation_accepted') THEN
        RAISE EXCEPTION 'no member email %', p_template USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT u.email INTO v_email
    FROM public.tenant_users AS m JOIN public.users AS u ON u.id = m.user_id
    WHERE m.tenant_id = app.current_tenant_id() AND m.user_id = p_user_id
      AND m.status = 'active' AND u.status = 'active';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM app.enqueue_notification(v_email, p_template,
        CASE WHEN jsonb_typeof(p_data) = 'object' THEN p_data - 'link' - 'console_url' - 'token'
             ELSE '{}' END);
    RETURN true;
END
$$;

-- Verifies the address of the token's user: once, before it expires, and only while
-- the user still has that address. Returns the user, NULL for a bad token.
CREATE FUNCTION app.verify_email(p_token_hash bytea) RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user uuid;
BEGIN
    UPDATE auth.email_verification_tokens AS t SET used_at = now()
    FROM public.users AS u
    WHERE t.token_hash = p_token_hash AND t.used_at IS NULL AND t.expires_at > now()
      AND u.id = t.user_id AND u.email = t.email AND u.status = 'active'
    RETURNING t.user_id INTO v_user;
    IF v_user IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE public.users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = v_user;
    RETURN v_user;
END
$$;

-- Privileges ---------------------------------------------------------------------------

-- Nobody reads or writes the queue's tables but through the functions above.
REVOKE ALL ON public.jobs, public.job_schedules FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION
    app.enqueue_job(text, jsonb, text, timestamptz, integer),
    app.enqueue_platform_job(text, jsonb, text, timestamptz, integer),
    app.claim_jobs(text, text[], integer, integer, timestamptz),
    app.complete_job(bigint, uuid),
    app.fail_job(bigint, uuid, text, timestamptz, boolean),
    app.extend_job_leases(uuid[], integer),
    app.release_jobs(uuid[]),
    app.fire_schedule(text, timestamptz, jsonb),
    app.enqueue_for_active_tenants(text, jsonb, text, timestamptz),
    app.jobs_page(text, bigint, integer),
    app.jobs_due(text[], timestamptz),
    app.expedite_jobs(text, timestamptz),
    app.prune_jobs(timestamptz, integer),
    app.retry_job(bigint),
    app.current_user_is_platform_admin(),
    app.new_opaque_token(),
    app.email_job_payload(text, text, jsonb),
    app.email_time(timestamptz),
    app.request_email_verification(),
    app.send_invitation_email(uuid, text),
    app.send_member_email(uuid, text, jsonb),
    app.verify_email(bytea)
FROM PUBLIC;
REVOKE ALL ON app.request_job_kinds FROM PUBLIC;

-- Requests: their tenant's jobs of the kinds listed, the completion of a job whose
-- lease they hold, and the emails of their flows, whose recipients and text come from
-- the database. No longer any email of their choosing: app.enqueue_notification
-- (recipient, template and data as given) is the credential flows' and the
-- functions', not the requests'.
REVOKE EXECUTE ON FUNCTION app.enqueue_notification(text, text, jsonb) FROM rowguard_api;
GRANT EXECUTE ON FUNCTION
    app.enqueue_job(text, jsonb, text, timestamptz, integer),
    app.complete_job(bigint, uuid),
    app.current_user_is_platform_admin(),
    app.request_email_verification(),
    app.send_invitation_email(uuid, text),
    app.send_member_email(uuid, text, jsonb)
TO rowguard_api;

-- The queue's machinery and the credential flows.
GRANT EXECUTE ON FUNCTION
    app.enqueue_notification(text, text, jsonb),
    app.enqueue_platform_job(text, jsonb, text, timestamptz, integer),
    app.claim_jobs(text, text[], integer, integer, timestamptz),
    app.fail_job(bigint, uuid, text, timestamptz, boolean),
    app.extend_job_leases(uuid[], integer),
    app.release_jobs(uuid[]),
    app.fire_schedule(text, timestamptz, jsonb),
    app.enqueue_for_active_tenants(text, jsonb, text, timestamptz),
    app.jobs_page(text, bigint, integer),
    app.jobs_due(text[], timestamptz),
    app.expedite_jobs(text, timestamptz),
    app.prune_jobs(timestamptz, integer),
    app.retry_job(bigint),
    app.verify_email(bytea)
TO rowguard_auth;
