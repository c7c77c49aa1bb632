-- The job queue's depth for GET /metrics (src/platform/metrics.rs): how many jobs are
-- in each state but `succeeded` (those are history, pruned in time, not a backlog),
-- asked as the queue's machinery (rowguard_auth), which reads no row of `jobs` itself.
-- Each count is an index-only scan of jobs_state_idx, so a scrape stays cheap however
-- long the history; every state is answered, with 0 when it has no job, so a gauge
-- drops back to 0 instead of keeping its last value.
CREATE FUNCTION app.job_counts()
    RETURNS TABLE (state text, jobs bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.state, (SELECT count(*) FROM public.jobs AS j WHERE j.state = s.state)
    FROM unnest(ARRAY['queued', 'running', 'failed', 'dead']) AS s (state)
$$;

REVOKE EXECUTE ON FUNCTION app.job_counts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.job_counts() TO rowguard_auth;
