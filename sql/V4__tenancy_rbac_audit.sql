-- Tenancy management: invitations, the inventory ledger of the reference module, and
-- the audit trail. All three are tenant-scoped (policies in policies/); invitation
-- tokens, like every secret, live in schema auth.

CREATE TABLE invitations (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    email       text NOT NULL CHECK (email = lower(btrim(email)) AND email <> ''),
    role_id     uuid NOT NULL,
    store_id    uuid,
    invited_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    revoked_at  timestamptz,
    PRIMARY KEY (tenant_id, id),
    -- A role with pending invitations cannot be deleted (409), like an assigned one.
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id) ON DELETE NO ACTION,
    FOREIGN KEY (tenant_id, store_id) REFERENCES stores (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX invitations_email_idx ON invitations (tenant_id, email);

CREATE TABLE auth.invitation_tokens (
    token_hash    bytea PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    invitation_id uuid NOT NULL,
    FOREIGN KEY (tenant_id, invitation_id) REFERENCES public.invitations (tenant_id, id) ON DELETE CASCADE
);

-- Every change of stock, with who made it and why; inventory.quantity is their sum.
CREATE TABLE inventory_adjustments (
    tenant_id  uuid NOT NULL,
    store_id   uuid NOT NULL,
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    product_id uuid NOT NULL,
    delta      bigint NOT NULL CHECK (delta <> 0),
    reason     text NOT NULL CHECK (btrim(reason) <> ''),
    actor_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, store_id, id),
    FOREIGN KEY (tenant_id, store_id) REFERENCES stores (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id) ON DELETE CASCADE
);
ALTER TABLE inventory ADD CONSTRAINT inventory_quantity_not_negative CHECK (quantity >= 0);

-- Who changed what. Appended in the same transaction as the change it records; the
-- runtime role may read and append, never update or delete.
CREATE TABLE audit_events (
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    actor_user_id uuid,
    action        text NOT NULL,
    target_type   text NOT NULL,
    target_id     uuid,
    store_id      uuid,
    details       jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_events_recent_idx ON audit_events (tenant_id, created_at DESC, id DESC);

-- Keyset pagination orders lists by (created_at, id): index them so.
CREATE INDEX stores_created_idx ON stores (tenant_id, created_at, id);
CREATE INDEX products_created_idx ON products (tenant_id, created_at, id);
CREATE INDEX tenant_users_created_idx ON tenant_users (tenant_id, created_at, user_id);
CREATE INDEX roles_created_idx ON roles (tenant_id, created_at, id);

-- Messages to send, from any flow that has one (invitations here).
CREATE FUNCTION app.enqueue_notification(p_recipient text, p_template text, p_payload jsonb) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO public.notification_outbox (recipient, template, payload)
    VALUES (p_recipient, p_template, p_payload);
$$;

-- Stores the hash of an invitation's token. The invitation must be visible to the
-- caller (the policies make that: same tenant), so a request cannot attach tokens to
-- another tenant's invitations.
CREATE FUNCTION app.set_invitation_token(p_invitation_id uuid, p_token_hash bytea) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO auth.invitation_tokens (token_hash, tenant_id, invitation_id)
    SELECT p_token_hash, i.tenant_id, i.id FROM public.invitations AS i
    WHERE i.tenant_id = app.current_tenant_id() AND i.id = p_invitation_id;
$$;

-- Accepting starts from a bare token, before any tenant context: this answers which
-- invitation it is, and in which state. status: pending | accepted | revoked | expired.
CREATE FUNCTION app.invitation_for_token(p_token_hash bytea)
    RETURNS TABLE (tenant_id uuid, invitation_id uuid, email text, role_id uuid, store_id uuid, status text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT i.tenant_id, i.id, i.email, i.role_id, i.store_id,
           CASE WHEN i.accepted_at IS NOT NULL THEN 'accepted'
                WHEN i.revoked_at IS NOT NULL THEN 'revoked'
                WHEN i.expires_at <= now() THEN 'expired'
                ELSE 'pending' END
    FROM auth.invitation_tokens AS t
    JOIN public.invitations AS i ON i.tenant_id = t.tenant_id AND i.id = t.invitation_id
    WHERE t.token_hash = p_token_hash
$$;

-- The id, status and hash of the user with this email, if any: accepting links an
-- existing user only after checking their own password.
CREATE FUNCTION app.user_for_invitation(p_email text)
    RETURNS TABLE (user_id uuid, status text, password_hash text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.id, u.status, c.password_hash
    FROM public.users AS u LEFT JOIN auth.user_credentials AS c ON c.user_id = u.id
    WHERE u.email = p_email
$$;

REVOKE EXECUTE ON FUNCTION
    app.enqueue_notification(text, text, jsonb),
    app.set_invitation_token(uuid, bytea),
    app.invitation_for_token(bytea),
    app.user_for_invitation(text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    app.enqueue_notification(text, text, jsonb),
    app.set_invitation_token(uuid, bytea),
    app.invitation_for_token(bytea),
    app.user_for_invitation(text)
TO rowguard_api;

GRANT SELECT, INSERT, UPDATE, DELETE ON invitations TO rowguard_api;
GRANT SELECT, INSERT ON inventory_adjustments, audit_events TO rowguard_api;
