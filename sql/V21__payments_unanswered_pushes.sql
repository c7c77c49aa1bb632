-- Pushes Daraja got but never answered (src/modules/payments/service.rs): the request
-- went out, the answer did not come back (a timeout after sending, a connection lost),
-- so the prompt may be on the payer's phone while no payment row names it. Without a
-- record, the payer's success callback would name a CheckoutRequestID nobody knows and
-- the money would be recorded as unknown; with it, a success callback of the same
-- amount from the same number, soon after, is matched to the push and pays the invoice.

CREATE TABLE payment_unanswered_pushes (
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    invoice_id      uuid NOT NULL,
    -- The request that pushed: a payment made from the matched callback carries its
    -- key, so a retry with that key answers that payment.
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash    bytea NOT NULL CHECK (length(request_hash) = 32),
    amount_minor    bigint NOT NULL CHECK (amount_minor > 0 AND amount_minor % 100 = 0),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    phone_number    text NOT NULL CHECK (phone_number ~ '^254[17][0-9]{8}$'),
    pushed_at       timestamptz NOT NULL,
    -- The payment a callback turned it into; NULL while none has.
    payment_id      uuid,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, payment_id) REFERENCES payments (tenant_id, id) ON DELETE CASCADE
);
-- The matching: unmatched pushes of an amount, recent first.
CREATE INDEX payment_unanswered_pushes_unmatched_idx
    ON payment_unanswered_pushes (amount_minor, pushed_at) WHERE payment_id IS NULL;
-- An initiation's check for a recent unanswered push of its invoice.
CREATE INDEX payment_unanswered_pushes_invoice_idx
    ON payment_unanswered_pushes (tenant_id, invoice_id, pushed_at);

GRANT SELECT, INSERT ON payment_unanswered_pushes TO rowguard_api;
GRANT UPDATE (payment_id) ON payment_unanswered_pushes TO rowguard_api;

-- The one unanswered push, of any tenant, that a success callback naming no payment
-- of ours can be: unmatched, pushed since p_since, of the amount paid, to a number
-- the callback's (digits, `*` where Daraja masks one) fits. Two or more fit: none is
-- chosen (the operator's, from the unknown callback's record). Like app.payment_tenant,
-- it gives the callback the tenant whose context then does the rest, under its policies.
CREATE FUNCTION app.unanswered_push_for(
    p_amount_minor bigint, p_phone text, p_since timestamptz)
    RETURNS TABLE (tenant_id uuid, id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH fitting AS (
        SELECT u.tenant_id, u.id
        FROM public.payment_unanswered_pushes AS u
        WHERE u.payment_id IS NULL
          AND u.amount_minor = p_amount_minor
          AND u.pushed_at >= p_since
          AND p_phone ~ '^[0-9*]{12}$'
          AND u.phone_number LIKE translate(p_phone, '*', '_')
        LIMIT 2
    )
    SELECT f.tenant_id, f.id FROM fitting AS f WHERE (SELECT count(*) FROM fitting) = 1
$$;

REVOKE EXECUTE ON FUNCTION app.unanswered_push_for(bigint, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.unanswered_push_for(bigint, text, timestamptz) TO rowguard_api;
