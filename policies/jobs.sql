-- jobs: the job queue (sql/V10__jobs.sql). No runtime role holds any privilege on it:
-- requests enqueue and complete jobs through SECURITY DEFINER functions, and the
-- queue's machinery (rowguard_auth) claims them the same way, because payloads carry
-- secrets until they are delivered. The policy is what holds should a privilege ever
-- be granted: a tenant's context sees only that tenant's jobs, never a platform job.
ALTER TABLE public.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.jobs FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenant_isolation ON public.jobs;
CREATE POLICY tenant_isolation ON public.jobs
    USING (tenant_id = (SELECT app.current_tenant_id()))
    WITH CHECK (tenant_id = (SELECT app.current_tenant_id()));
