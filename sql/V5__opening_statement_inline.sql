-- The opening statement of a request is now one plain statement the server prepares
-- (src/db/begin_request.sql) instead of a call of app.begin_request: the function's own
-- statements and its set-returning call made the opening transaction about a fifth
-- slower. Same answers, same context, same role switch.
--
-- The function stays for one release, so that servers of the previous release keep
-- working during a rolling deploy (and a rolled-back binary finds it); a later
-- migration drops it.
COMMENT ON FUNCTION app.begin_request(uuid, uuid, uuid, text) IS
    'Deprecated: unused since the opening statement moved to src/db/begin_request.sql; '
    'kept for servers of the previous release during a rolling deploy.';
