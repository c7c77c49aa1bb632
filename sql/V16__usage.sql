-- Usage (module src/modules/usage, docs/api.md "Usage"): what a tenant uses of its
-- plan's limits, per period of its subscription.
--
-- Three tables, all tenant-scoped under row-level security:
--   * usage_periods: one row per tenant and subscription period. `api_requests` is
--     metered in each server's memory and added here every few seconds by
--     app.record_api_requests (one statement per flush, for every tenant the process
--     saw), so counting costs a request no round trip; several processes' flushes add
--     up. The period is the subscription's current one at flush time.
--   * usage_metrics: the counts of each limit (stores, members, products,
--     api_requests) and the limit itself, as the hourly `usage.aggregate` last saw
--     them in that period: the history, which cannot be recounted later (rows are
--     deleted, plans change).
--   * usage_thresholds: the 80% and 100% notices sent, one row each per period and
--     limit; its key is what makes a notice go out once, however often the
--     aggregation runs, even twice at once (the second insert waits for the first and
--     then does nothing).

CREATE TABLE usage_periods (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- For keyset pages of the history, `(period_start, id)` like every other list.
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL CHECK (period_end > period_start),
    api_requests bigint NOT NULL DEFAULT 0 CHECK (api_requests >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- docs/design.md invariant 5; the policy's column leads both keys.
    PRIMARY KEY (tenant_id, period_start),
    UNIQUE (tenant_id, id)
);

CREATE TABLE usage_metrics (
    tenant_id    uuid NOT NULL,
    period_start timestamptz NOT NULL,
    code         text NOT NULL REFERENCES plan_limit_kinds (code),
    value        bigint NOT NULL CHECK (value >= 0),
    -- The plan's limit when recorded; NULL: unlimited.
    max          bigint CHECK (max IS NULL OR max >= 0),
    recorded_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, period_start, code),
    FOREIGN KEY (tenant_id, period_start) REFERENCES usage_periods (tenant_id, period_start) ON DELETE CASCADE
);

CREATE TABLE usage_thresholds (
    tenant_id    uuid NOT NULL,
    period_start timestamptz NOT NULL,
    code         text NOT NULL,
    threshold    smallint NOT NULL CHECK (threshold IN (80, 100)),
    -- What was seen when the notice went out.
    value        bigint NOT NULL,
    max          bigint NOT NULL,
    sent_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, period_start, code, threshold),
    FOREIGN KEY (tenant_id, period_start, code)
        REFERENCES usage_metrics (tenant_id, period_start, code) ON DELETE CASCADE
);

-- The flush: adds each tenant's count to its current period's row (created on first
-- use), for all the tenants of one process's flush at once. A tenant without a
-- subscription (deleted meanwhile) is skipped: its counts have nowhere to go. Rows are
-- upserted in tenant order, so that two processes flushing the same tenants at once
-- lock their rows in the same order and wait for each other instead of deadlocking.
-- Returns how many periods it added to.
CREATE FUNCTION app.record_api_requests(p_tenants uuid[], p_counts bigint[]) RETURNS integer
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH counted AS (
        SELECT c.tenant_id, sum(c.n)::bigint AS n
        FROM unnest(p_tenants, p_counts) AS c (tenant_id, n)
        WHERE c.n > 0
        GROUP BY c.tenant_id
    ), recorded AS (
        INSERT INTO public.usage_periods AS u (tenant_id, period_start, period_end, api_requests)
        SELECT c.tenant_id, s.current_period_start, s.current_period_end, c.n
        FROM counted AS c JOIN public.subscriptions AS s ON s.tenant_id = c.tenant_id
        ORDER BY c.tenant_id
        ON CONFLICT (tenant_id, period_start) DO UPDATE
            SET api_requests = u.api_requests + excluded.api_requests, updated_at = now()
        RETURNING 1
    )
    SELECT count(*)::integer FROM recorded
$$;

REVOKE EXECUTE ON FUNCTION app.record_api_requests(uuid[], bigint[]) FROM PUBLIC;
-- The servers' meters flush on the machinery's pool: no request can add to a count.
GRANT EXECUTE ON FUNCTION app.record_api_requests(uuid[], bigint[]) TO rowguard_auth;

-- Requests read their tenant's usage; the aggregation (a job, as rowguard_api in the
-- tenant's context) opens a period row when no flush did (a tenant with no request
-- this period still has a history), records the counts and the notices. It cannot
-- write api_requests: only the flush adds to it.
GRANT SELECT ON usage_periods, usage_metrics, usage_thresholds TO rowguard_api;
GRANT INSERT (tenant_id, period_start, period_end) ON usage_periods TO rowguard_api;
GRANT INSERT ON usage_metrics TO rowguard_api;
GRANT UPDATE (value, max, recorded_at) ON usage_metrics TO rowguard_api;
GRANT INSERT ON usage_thresholds TO rowguard_api;

-- The usage emails are member emails (V15's app.member_email_templates): the
-- recipient is a member, read by app.send_member_email.
INSERT INTO app.member_email_templates (template) VALUES ('usage_threshold');
