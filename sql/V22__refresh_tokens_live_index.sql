-- The session check of every request (app.session_alive, from the opening statement)
-- asks whether a family has a live refresh token. Rotation keeps exactly one live token
-- per family and adds a row each time: a month-long session refreshed every fifteen
-- minutes has thousands of used rows, and the family index made the probe walk them
-- all. The live one alone, by its family:
CREATE INDEX refresh_tokens_live_idx ON auth.refresh_tokens (family_id, user_id)
    WHERE used_at IS NULL AND revoked_at IS NULL;
