-- The context of every request transaction, sent by src/platform/db/request_tx.rs right
-- after BEGIN and before src/platform/db/begin_request.sql, pipelined with both (one
-- round trip). Parameters: $1 tenant, $2 user, $3 store (each may be NULL), $4 the
-- runtime role to switch to (rowguard_api for requests, rowguard_auth for the
-- credential flows; the login role can become only its own).
--
-- Transaction-local (set_config(..., true)): COMMIT or ROLLBACK clears them, so a
-- pooled connection carries nothing to the next request (invariant 1), and the role
-- switch comes last, so everything after it runs under row-level security
-- (invariant 2). A role the login role cannot become fails the whole transaction.
SELECT pg_catalog.set_config('app.tenant_id', coalesce($1::uuid::text, ''), true) AS tenant_id,
       pg_catalog.set_config('app.user_id', coalesce($2::uuid::text, ''), true) AS user_id,
       pg_catalog.set_config('app.store_id', coalesce($3::uuid::text, ''), true) AS store_id,
       pg_catalog.set_config('role', $4::text, true) AS role
