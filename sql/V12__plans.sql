-- Plans, their features and their limits (docs/api.md, "Plans, features and the
-- gate"): code-defined, seeded here, the same in every database. A tenant's
-- subscription (a later migration) names one plan; the feature gate and the limits
-- read these tables. None is tenant-scoped: every tenant sees every plan.

CREATE TABLE features (
    code        text PRIMARY KEY CHECK (code ~ '^[a-z][a-z_]*$'),
    description text NOT NULL
);

-- What a plan bounds. `metered`: counted per period and never refused (api_requests);
-- the others are counts of rows, checked when one is created.
CREATE TABLE plan_limit_kinds (
    code        text PRIMARY KEY CHECK (code ~ '^[a-z][a-z_]*$'),
    description text NOT NULL,
    metered     boolean NOT NULL DEFAULT false
);

CREATE TABLE plans (
    code           text PRIMARY KEY CHECK (code ~ '^[a-z][a-z_]*$'),
    name           text NOT NULL,
    -- Minor units (KES cents) per interval, with the currency: never a float.
    price_minor    bigint NOT NULL CHECK (price_minor >= 0),
    currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    billing_interval text NOT NULL CHECK (billing_interval IN ('month', 'year')),
    trial_days     integer NOT NULL DEFAULT 0 CHECK (trial_days >= 0),
    -- The order plans are listed in: cheapest first.
    position       integer NOT NULL UNIQUE
);

CREATE TABLE plan_features (
    plan_code    text NOT NULL REFERENCES plans (code) ON DELETE CASCADE,
    feature_code text NOT NULL REFERENCES features (code) ON DELETE CASCADE,
    PRIMARY KEY (plan_code, feature_code)
);

-- Every plan has a row for every limit kind; `max` NULL: unlimited.
CREATE TABLE plan_limits (
    plan_code  text NOT NULL REFERENCES plans (code) ON DELETE CASCADE,
    limit_code text NOT NULL REFERENCES plan_limit_kinds (code) ON DELETE CASCADE,
    max        bigint CHECK (max IS NULL OR max >= 0),
    PRIMARY KEY (plan_code, limit_code)
);

INSERT INTO features (code, description) VALUES
    ('inventory', 'Store inventory and its adjustments (/inventory*)'),
    ('audit_log', 'The audit trail (GET /audit-events)'),
    ('api_keys', 'API keys (/api-keys*)');

INSERT INTO plan_limit_kinds (code, description, metered) VALUES
    ('stores', 'Stores of the tenant', false),
    ('members', 'Active members plus pending invitations', false),
    ('products', 'Products of the tenant', false),
    ('api_requests', 'API requests per billing period (metered, never refused)', true);

INSERT INTO plans (code, name, price_minor, currency, billing_interval, trial_days, position) VALUES
    ('free', 'Free', 0, 'KES', 'month', 0, 1),
    ('starter', 'Starter', 250000, 'KES', 'month', 14, 2),
    ('business', 'Business', 1000000, 'KES', 'month', 14, 3);

INSERT INTO plan_features (plan_code, feature_code) VALUES
    ('starter', 'inventory'),
    ('business', 'inventory'),
    ('business', 'audit_log'),
    ('business', 'api_keys');

-- api_requests is not named by the contract: a metered allowance that only informs
-- (usage thresholds), chosen here.
INSERT INTO plan_limits (plan_code, limit_code, max) VALUES
    ('free', 'stores', 1), ('free', 'members', 3), ('free', 'products', 100), ('free', 'api_requests', 10000),
    ('starter', 'stores', 3), ('starter', 'members', 10), ('starter', 'products', 1000), ('starter', 'api_requests', 100000),
    ('business', 'stores', NULL), ('business', 'members', NULL), ('business', 'products', NULL), ('business', 'api_requests', NULL);

GRANT SELECT ON features, plan_limit_kinds, plans, plan_features, plan_limits TO rowguard_api;
