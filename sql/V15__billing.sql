-- Billing (docs/api.md, "Subscriptions" and "Billing"; module src/modules/billing):
-- invoices, their lines and each tenant's gapless invoice counter; the renewal job
-- and the plan changes write them, and move the subscription they pay for.

-- Each tenant's invoice numbers: INV-000001, INV-000002, ... with no gap. A sequence
-- would leave gaps (a rolled-back issue consumes its value); this row is updated in
-- the transaction that issues the invoice, so its lock serialises concurrent issues
-- and a rollback gives the number back.
CREATE TABLE invoice_counters (
    tenant_id   uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    last_number bigint NOT NULL CHECK (last_number > 0)
);

CREATE TABLE invoices (
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    -- The counter's value when it was issued, and how it reads ('INV-' and at least six
    -- digits: to_char would truncate past 999999).
    seq           bigint NOT NULL CHECK (seq > 0),
    number        text NOT NULL CHECK (number = 'INV-' || lpad(seq::text, greatest(6, length(seq::text)), '0')),
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid', 'void')),
    -- What it pays for: `renewal`, the next period of the plan the tenant is on (unpaid
    -- past its due time, the subscription is past_due, then unpaid); `plan_change`, the
    -- first period of the plan the tenant asked to move to (pending_plan_code), which
    -- takes effect when it is paid and leaves the status alone while it is not.
    purpose       text NOT NULL CHECK (purpose IN ('renewal', 'plan_change')),
    plan_code     text NOT NULL REFERENCES plans (code),
    currency      text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    total_minor   bigint NOT NULL CHECK (total_minor >= 0),
    period_start  timestamptz NOT NULL,
    period_end    timestamptz NOT NULL CHECK (period_end > period_start),
    due_at        timestamptz NOT NULL,
    paid_at       timestamptz,
    -- The payment's receipt (an M-Pesa receipt number): what the money is matched by.
    payment_reference text CHECK (payment_reference IS NULL OR btrim(payment_reference) <> ''),
    voided_at     timestamptz,
    -- The instant it was issued as of (the renewal job's "now", which `rowguard jobs
    -- run --at` moves): the list is newest first by it.
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, seq),
    UNIQUE (tenant_id, number),
    CHECK ((status = 'paid') = (paid_at IS NOT NULL AND payment_reference IS NOT NULL)),
    CHECK ((status = 'void') = (voided_at IS NOT NULL))
);

-- One open invoice per tenant at a time: the renewal never issues a second while one
-- waits, and a plan change first voids the unpaid one it replaces.
CREATE UNIQUE INDEX invoices_one_open_idx ON invoices (tenant_id) WHERE status = 'open';
-- A period is invoiced once (the renewal job run twice as of one instant issues one
-- invoice, even if two runs raced past the subscription's row lock).
CREATE UNIQUE INDEX invoices_period_idx ON invoices (tenant_id, period_start) WHERE status <> 'void';
-- The list: newest first, keyset by (created_at, id).
CREATE INDEX invoices_recent_idx ON invoices (tenant_id, created_at DESC, id DESC);

CREATE TABLE invoice_lines (
    tenant_id    uuid NOT NULL,
    invoice_id   uuid NOT NULL,
    position     integer NOT NULL CHECK (position > 0),
    description  text NOT NULL CHECK (btrim(description) <> ''),
    amount_minor bigint NOT NULL,
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL CHECK (period_end > period_start),
    PRIMARY KEY (tenant_id, invoice_id, position),
    FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, id) ON DELETE CASCADE
);

-- Invoices are issued, paid or voided, never rewritten: what they charge stays as issued.
GRANT SELECT, INSERT ON invoices, invoice_lines TO rowguard_api;
GRANT UPDATE (status, paid_at, payment_reference, voided_at) ON invoices TO rowguard_api;
GRANT SELECT, INSERT ON invoice_counters TO rowguard_api;
GRANT UPDATE (last_number) ON invoice_counters TO rowguard_api;

-- The subscription moves (plan changes, renewal, payments): only what they change.
-- The tenant and the creation time never change.
GRANT UPDATE (plan_code, status, trial_end, trial_used, anchor_at, current_period_start,
              current_period_end, cancel_at_period_end, pending_plan_code, updated_at)
    ON subscriptions TO rowguard_api;

-- The member emails (to a member of the context's tenant, the address read by the
-- function): a table each module's migration adds its templates to, rather than a list
-- inside the function that each migration would replace and could drop others' from.
-- V10's invitation_accepted, and billing's invoice issued and subscription past due.
CREATE TABLE app.member_email_templates (
    template text PRIMARY KEY CHECK (template ~ '^[a-z][a-z_]*$')
);
INSERT INTO app.member_email_templates (template) VALUES
    ('invitation_accepted'), ('invoice_issued'), ('subscription_past_due');

-- As in V10, with the templates of that table; also for the credential flows' role,
-- whose transactions notify too (an accepted invitation), so that every notification
-- email goes through this one function.
CREATE OR REPLACE FUNCTION app.send_member_email(p_user_id uuid, p_template text, p_data jsonb) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_email text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM app.member_email_templates AS t WHERE t.template = p_template) THEN
        RAISE EXCEPTION 'no member email %', p_template USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT u.email INTO v_email
    FROM public.tenant_users AS m JOIN public.users AS u ON u.id = m.user_id
    WHERE m.tenant_id = app.current_tenant_id() AND m.user_id = p_user_id
      AND m.status = 'active' AND u.status = 'active';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM app.enqueue_notification(v_email, p_template,
        CASE WHEN jsonb_typeof(p_data) = 'object' THEN p_data - 'link' - 'console_url' - 'token'
             ELSE '{}' END);
    RETURN true;
END
$$;
GRANT EXECUTE ON FUNCTION app.send_member_email(uuid, text, jsonb) TO rowguard_auth;
