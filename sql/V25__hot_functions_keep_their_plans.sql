-- Two functions on hot paths keep their plans (issue 18).
--
-- PostgreSQL 15 plans a LANGUAGE sql function's body again on every call unless it
-- can inline the body into the caller, and a SECURITY DEFINER function or one with a
-- SET clause is never inlined. PL/pgSQL keeps each query's plan for the connection's
-- life. With pg_stat_statements (track = all, track_planning) over the bench:
--   * app.current_user_memberships (GET /me, the tenant switch): planned on each of
--     5,070 calls, 0.31 ms of planning for 0.11 ms of execution;
--   * app.clear_login_failures (every successful login, inside app.complete_login):
--     planned on each call.
-- Same signatures, same answers, same grants (CREATE OR REPLACE keeps them); only the
-- language changes.

CREATE OR REPLACE FUNCTION app.current_user_memberships()
    RETURNS TABLE (tenant_id uuid, tenant_name text, tenant_status text, member_status text,
                   last_used_at timestamptz, joined_at timestamptz)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- As in V19: a deleted tenant is gone for its members.
    RETURN QUERY
    SELECT t.id, t.name, t.status, tu.status, tu.last_used_at, tu.created_at
    FROM public.tenant_users AS tu JOIN public.tenants AS t ON t.id = tu.tenant_id
    WHERE tu.user_id = app.current_user_id() AND t.status <> 'deleted'
    ORDER BY tu.last_used_at DESC NULLS LAST, tu.created_at, t.id;
END
$$;

CREATE OR REPLACE FUNCTION app.clear_login_failures(p_email text, p_client text, p_attempt_ids bigint[])
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- As in V9: the attempt taken back, and the email's earlier failures from this
    -- client forgotten (failures from elsewhere stay counted).
    DELETE FROM auth.attempts AS a
    WHERE a.id = ANY (p_attempt_ids)
       OR (a.kind = 'login_email_client' AND a.subject = p_client || ' ' || p_email);
END
$$;
