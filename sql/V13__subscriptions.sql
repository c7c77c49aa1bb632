-- Subscriptions (docs/api.md, "Subscriptions"): every tenant has exactly one, naming
-- its plan. A new tenant starts on the default plan (ROWGUARD_DEFAULT_PLAN), active,
-- with no trial; its period runs a month (or a year) from its anchor, the instant it
-- started, and later periods keep the anchor's day (Jan 31, Feb 28, Mar 31).
-- Also the permissions of the SaaS modules.

CREATE TABLE subscriptions (
    tenant_id            uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    plan_code            text NOT NULL REFERENCES plans (code),
    status               text NOT NULL DEFAULT 'active'
                         CHECK (status IN ('trialing', 'active', 'past_due', 'unpaid', 'canceled')),
    trial_end            timestamptz,
    -- Whether the tenant ever had a trial: a trial is given once.
    trial_used           boolean NOT NULL DEFAULT false,
    anchor_at            timestamptz NOT NULL,
    current_period_start timestamptz NOT NULL,
    current_period_end   timestamptz NOT NULL CHECK (current_period_end > current_period_start),
    cancel_at_period_end boolean NOT NULL DEFAULT false,
    pending_plan_code    text REFERENCES plans (code),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    -- docs/design.md invariant 5, and "exactly one per tenant".
    PRIMARY KEY (tenant_id),
    CHECK ((status = 'trialing') = (trial_end IS NOT NULL))
);

-- Every existing tenant gets its subscription: the free plan, from now.
INSERT INTO subscriptions (tenant_id, plan_code, anchor_at, current_period_start, current_period_end)
SELECT t.id, 'free', now(), now(), now() + interval '1 month' FROM tenants AS t;

-- A request reads its tenant's subscription; the flow that creates a tenant creates
-- it. Changes (plan, status, periods) come with the subscription and renewal flows.
GRANT SELECT, INSERT ON subscriptions TO rowguard_api;

-- The permissions of the SaaS modules (docs/api.md, Part 2): Owner holds them all by
-- itself (it holds every permission), Admin all but tenants.delete; Store Manager and
-- Staff none.
INSERT INTO permissions (code, description) VALUES
    ('subscriptions.view', 'View the tenant''s subscription and plan'),
    ('subscriptions.manage', 'Change the tenant''s plan or cancel its subscription'),
    ('billing.view', 'View invoices and payments'),
    ('billing.pay', 'Pay invoices'),
    ('usage.view', 'View the tenant''s usage'),
    ('notifications.manage', 'Manage the tenant''s notification settings'),
    ('api_keys.view', 'List API keys'),
    ('api_keys.manage', 'Create and revoke API keys'),
    ('tenants.export', 'Export every row of the tenant'),
    ('tenants.delete', 'Delete the tenant');
INSERT INTO app.admin_withheld_permissions (permission_code) VALUES ('tenants.delete');

-- Existing tenants' Owner and Admin get them as a new tenant's would.
INSERT INTO role_permissions (tenant_id, role_id, permission_code)
SELECT r.tenant_id, r.id, p.code
FROM roles AS r
JOIN permissions AS p ON p.code IN ('subscriptions.view', 'subscriptions.manage', 'billing.view',
                                    'billing.pay', 'usage.view', 'notifications.manage', 'api_keys.view',
                                    'api_keys.manage', 'tenants.export', 'tenants.delete')
WHERE r.is_system AND (r.name = 'Owner' OR (r.name = 'Admin' AND p.code <> 'tenants.delete'))
ON CONFLICT DO NOTHING;
