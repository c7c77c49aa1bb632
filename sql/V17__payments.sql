-- Payments (docs/api.md, "Payments: M-Pesa"; module src/modules/payments): each
-- attempt to pay an invoice by M-Pesa STK push, the callbacks Daraja posts about it,
-- and the callbacks that named no payment of ours (DESIGN.md invariants 12 and 13).

CREATE TABLE payments (
    tenant_id            uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                   uuid NOT NULL DEFAULT gen_random_uuid(),
    invoice_id           uuid NOT NULL,
    -- The client's Idempotency-Key, and a hash of what it asked (invoice and
    -- normalised phone): the same key with another request is a conflict, not a replay.
    idempotency_key      text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash         bytea NOT NULL CHECK (length(request_hash) = 32),
    -- pending until a callback or a query settles it; then never again (the first
    -- terminal result wins).
    status               text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'succeeded', 'failed', 'cancelled', 'timeout')),
    -- What was asked of the payer, in minor units of currency (Daraja takes whole
    -- shillings: amount_minor is a multiple of 100).
    amount_minor         bigint NOT NULL CHECK (amount_minor > 0 AND amount_minor % 100 = 0),
    currency             text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    phone_number         text NOT NULL CHECK (phone_number ~ '^254[17][0-9]{8}$'),
    merchant_request_id  text NOT NULL,
    -- Daraja's name for the push: what callbacks and queries match by, across tenants.
    checkout_request_id  text NOT NULL UNIQUE CHECK (btrim(checkout_request_id) <> ''),
    customer_message     text NOT NULL,
    result_code          integer,
    result_desc          text,
    mpesa_receipt_number text,
    created_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    completed_at         timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, idempotency_key),
    FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, id) ON DELETE CASCADE,
    CHECK ((status = 'pending') = (completed_at IS NULL)),
    -- A success is Daraja's code 0 (its receipt comes with the callback; a query has none).
    CHECK (status <> 'succeeded' OR result_code = 0)
);

-- One prompt at a time per invoice: a second push while one waits for the payer's PIN
-- could charge twice (409 until the first is settled).
CREATE UNIQUE INDEX payments_one_pending_per_invoice_idx ON payments (tenant_id, invoice_id)
    WHERE status = 'pending';
-- The history: newest first, keyset by (created_at, id).
CREATE INDEX payments_recent_idx ON payments (tenant_id, created_at DESC, id DESC);
-- Reconciliation: the pending ones, oldest first.
CREATE INDEX payments_pending_idx ON payments (created_at) WHERE status = 'pending';

-- Every callback about one of the tenant's payments, as it arrived (the body as text,
-- byte for byte what Daraja sent, even when it does not parse).
CREATE TABLE payment_callbacks (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    payment_id  uuid NOT NULL,
    payload     text NOT NULL,
    source      text NOT NULL,
    -- Whether it settled the payment (false: a repeat, or after another result).
    applied     boolean NOT NULL,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, payment_id) REFERENCES payments (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX payment_callbacks_payment_idx ON payment_callbacks (tenant_id, payment_id, received_at);

-- Callbacks that name no payment (an unknown CheckoutRequestID, or a body that names
-- none): recorded for the operator, never applied. No tenant: nobody's row, written
-- and read only by the functions below (and the owner).
CREATE TABLE payment_callbacks_unknown (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    checkout_request_id text,
    payload             text NOT NULL,
    source              text NOT NULL,
    received_at         timestamptz NOT NULL DEFAULT clock_timestamp()
);
REVOKE ALL ON payment_callbacks_unknown FROM PUBLIC;

GRANT SELECT, INSERT ON payments, payment_callbacks TO rowguard_api;
-- Settling a payment changes only its outcome.
GRANT UPDATE (status, result_code, result_desc, mpesa_receipt_number, completed_at)
    ON payments TO rowguard_api;

-- The tenant of the payment a callback names. A callback carries no tenant, and the
-- payments are behind row-level security: this is the one way from Daraja's id to the
-- tenant whose context then settles it, under its policies.
CREATE FUNCTION app.payment_tenant(p_checkout_request_id text) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.tenant_id FROM public.payments AS p WHERE p.checkout_request_id = p_checkout_request_id
$$;

CREATE FUNCTION app.record_unknown_payment_callback(
    p_checkout_request_id text, p_payload text, p_source text) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO public.payment_callbacks_unknown (checkout_request_id, payload, source)
    VALUES (p_checkout_request_id, p_payload, p_source)
$$;

-- The reconciliation sweep's fan-out: one job per active tenant with a payment
-- pending since before p_before (not one per tenant every minute).
CREATE FUNCTION app.enqueue_payment_reconciliations(
    p_kind text, p_payload jsonb, p_unique_key text, p_before timestamptz)
    RETURNS integer
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH enqueued AS (
        INSERT INTO public.jobs (tenant_id, kind, payload, unique_key, run_at)
        SELECT t.id, p_kind, coalesce(p_payload, '{}'), p_unique_key, now()
        FROM public.tenants AS t
        WHERE t.status = 'active'
          AND EXISTS (SELECT 1 FROM public.payments AS p
                      WHERE p.tenant_id = t.id AND p.status = 'pending' AND p.created_at < p_before)
        ON CONFLICT (tenant_id, unique_key)
            WHERE unique_key IS NOT NULL AND state IN ('queued', 'running', 'failed')
            DO NOTHING
        RETURNING 1
    )
    SELECT count(*)::integer FROM enqueued
$$;

REVOKE EXECUTE ON FUNCTION
    app.payment_tenant(text),
    app.record_unknown_payment_callback(text, text, text),
    app.enqueue_payment_reconciliations(text, jsonb, text, timestamptz)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    app.payment_tenant(text),
    app.record_unknown_payment_callback(text, text, text)
TO rowguard_api;
GRANT EXECUTE ON FUNCTION
    app.enqueue_payment_reconciliations(text, jsonb, text, timestamptz)
TO rowguard_auth;

-- The payments' member emails.
INSERT INTO app.member_email_templates (template) VALUES ('payment_received'), ('payment_failed');
