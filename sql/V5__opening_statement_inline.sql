-- The opening statement of a request is now one plain statement the server prepares
-- (src/db/begin_request.sql) instead of a call of this PL/pgSQL function: the
-- function's own statements and its set-returning call cost a quarter of a request's
-- database time. Same answers, same context, same role switch.
DROP FUNCTION app.begin_request(uuid, uuid, uuid, text);
