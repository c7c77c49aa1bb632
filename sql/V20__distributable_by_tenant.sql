-- Distributable by tenant (docs/design.md invariant 5; the rule: src/platform/db/
-- distribution.rs, checked by `rowguard policies --check`): every table with a
-- tenant_id has it in its primary key, and no unique index of such a table leaves it
-- out, so that Citus can spread the schema by tenant_id (README, "When one PostgreSQL
-- is not enough"). Two credential tables of schema auth had a key of their own, and
-- three unique indexes named no tenant.
--
-- The indexes that were unique become plain ones: each is looked up without a tenant
-- (a presented token or key names no tenant), and what it found was unique only
-- because the server draws it at random (256-bit token hashes, random key ids), never
-- because the index refused a second one. A presented API key is matched on its id and
-- its secret's hash together, so two keys sharing an id could still not stand in for
-- each other.

-- A refresh token: looked up by its hash (rotation, logout), updated by its id.
ALTER TABLE auth.refresh_tokens
    DROP CONSTRAINT refresh_tokens_pkey,
    ADD PRIMARY KEY (tenant_id, id),
    DROP CONSTRAINT refresh_tokens_token_hash_key;
CREATE INDEX refresh_tokens_token_hash_idx ON auth.refresh_tokens (token_hash);

-- An invitation's token: looked up by its hash when the invitee accepts.
ALTER TABLE auth.invitation_tokens
    DROP CONSTRAINT invitation_tokens_pkey,
    ADD PRIMARY KEY (tenant_id, token_hash);
CREATE INDEX invitation_tokens_token_hash_idx ON auth.invitation_tokens (token_hash);

-- An API key: resolved by its id (app.api_key_principal), with its secret's hash.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_id_key;
CREATE INDEX api_keys_id_idx ON api_keys (id);
