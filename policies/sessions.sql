-- sessions: whether each session (refresh-token family, the access token's `sid`) is
-- live, kept by triggers on auth.refresh_tokens (sql/V24). Global, like users: a
-- session moves between tenants when it switches. A request sees the one session it
-- names, the access token's (app.session_id, set with the rest of the context): the
-- opening statement's session check. It cannot list sessions, and changes none (the
-- runtime role may only SELECT; the triggers write as the owner).
ALTER TABLE public.sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.sessions FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS sessions_named ON public.sessions;
CREATE POLICY sessions_named ON public.sessions FOR SELECT
    USING (id = (SELECT app.current_session_id()));
