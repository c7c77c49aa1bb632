-- rowguard core model: identity (users), tenancy (tenants, stores, memberships) and
-- role-based access control (roles, permissions, assignments), plus the reference
-- feature module (products, store-scoped inventory).
--
-- Conventions every tenant-scoped table follows (DESIGN.md):
--   * a `tenant_id` column that leads its primary key, so every policy filter is the
--     leading column of an index (invariant 8);
--   * foreign keys between tenant-scoped tables are composite `(tenant_id, x_id)`, so a
--     row can never reference another tenant's row even though foreign-key checks
--     bypass row-level security (invariant 5);
--   * row-level security is switched on and the policies are written in `policies/`,
--     one file per table, applied after these migrations (invariant 7).

-- The runtime role every request runs as (invariant 2). Roles are cluster-wide and
-- several databases (one per test, for instance) may migrate at once, so creation
-- tolerates a concurrent creator instead of failing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'rowguard_api') THEN
        BEGIN
            CREATE ROLE rowguard_api NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    -- The server's own login role switches to rowguard_api with set_config('role', ...,
    -- true); a non-superuser needs membership for that.
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
       AND NOT pg_catalog.pg_has_role(current_user, 'rowguard_api', 'MEMBER') THEN
        EXECUTE pg_catalog.format('GRANT rowguard_api TO %I', current_user);
    END IF;
END
$$;

-- Helper functions used by the policies live in their own schema, so that no table
-- name can shadow them.
CREATE SCHEMA app;

-- The request context. Fail closed: a missing setting, or an empty one (which is what a
-- setting reads as after an earlier transaction on the connection set it locally),
-- gives NULL, and `tenant_id = NULL` matches no row; it never raises a cast error.
-- The server only ever sets a canonical UUID or ''; anything else (only SQL run by
-- hand can set it) makes the statement fail, which shows nothing either.
-- One expression with no FROM, so the planner inlines it into each policy, where
-- `(SELECT app.current_tenant_id())` evaluates it once per statement. (A regular
-- expression check here, or a subquery that stops inlining, made the policy-filtered
-- list query 1.7x to 2x slower than an explicit WHERE: bench/run.sh, "RLS cost".)
CREATE FUNCTION app.setting_uuid(setting_name text) RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(pg_catalog.current_setting(setting_name, true), '')::uuid $$;

CREATE FUNCTION app.current_tenant_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT app.setting_uuid('app.tenant_id') $$;

CREATE FUNCTION app.current_user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT app.setting_uuid('app.user_id') $$;

CREATE FUNCTION app.current_store_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT app.setting_uuid('app.store_id') $$;

-- Identity. A user exists once, across tenants; email is stored normalized (trimmed,
-- lower-cased) and unique, so two concurrent registrations of one address cannot both
-- succeed.
CREATE TABLE users (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email             text NOT NULL,
    full_name         text NOT NULL,
    is_platform_admin boolean NOT NULL DEFAULT false,
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_normalized CHECK (email = lower(btrim(email)) AND email <> '')
);
CREATE UNIQUE INDEX users_email_key ON users (email);

-- Credentials and tokens live in their own schema, `auth`, on which the runtime role
-- has no USAGE at all: it can neither read nor write anything there, and only
-- SECURITY DEFINER functions with a fixed search_path reach it (invariant 6). Password
-- hashes sit apart from the profile, so the profile can be granted and they cannot.
CREATE SCHEMA auth;

CREATE TABLE auth.user_credentials (
    user_id       uuid PRIMARY KEY REFERENCES public.users (id) ON DELETE CASCADE,
    password_hash text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Tenancy. A tenant is a company; its id is the value of app.tenant_id.
CREATE TABLE tenants (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (btrim(name) <> ''),
    status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenant_users (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    PRIMARY KEY (tenant_id, user_id)
);
-- "Which tenants is this user in?" (login, tenant switch) starts from the user.
CREATE INDEX tenant_users_user_id_idx ON tenant_users (user_id);

-- A store is a branch of a tenant.
CREATE TABLE stores (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (btrim(name) <> ''),
    code       text,
    address    text,
    status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, code)
);

-- A user reaches a store through a tenant-wide role, a store-scoped role, or this link
-- (DESIGN.md invariant 4).
CREATE TABLE store_users (
    tenant_id  uuid NOT NULL,
    store_id   uuid NOT NULL,
    user_id    uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, store_id, user_id),
    FOREIGN KEY (tenant_id, store_id) REFERENCES stores (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES tenant_users (tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX store_users_user_idx ON store_users (tenant_id, user_id);

-- Authorization. Permissions are code-defined and seeded here, never created through
-- the API; roles belong to a tenant.
CREATE TABLE permissions (
    code        text PRIMARY KEY CHECK (code ~ '^[a-z_]+\.[a-z_]+$'),
    description text NOT NULL
);

CREATE TABLE roles (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (btrim(name) <> ''),
    description text,
    is_system   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE role_permissions (
    tenant_id       uuid NOT NULL,
    role_id         uuid NOT NULL,
    permission_code text NOT NULL REFERENCES permissions (code),
    PRIMARY KEY (tenant_id, role_id, permission_code),
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id) ON DELETE CASCADE
);

-- An assignment is tenant-wide (store_id NULL) or for one store.
CREATE TABLE user_roles (
    tenant_id  uuid NOT NULL,
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL,
    role_id    uuid NOT NULL,
    store_id   uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE NULLS NOT DISTINCT (tenant_id, user_id, role_id, store_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES tenant_users (tenant_id, user_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id) ON DELETE RESTRICT,
    FOREIGN KEY (tenant_id, store_id) REFERENCES stores (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX user_roles_role_idx ON user_roles (tenant_id, role_id);

-- The reference feature module: products are tenant-scoped, inventory store-scoped.
CREATE TABLE products (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    sku         text NOT NULL CHECK (btrim(sku) <> ''),
    name        text NOT NULL CHECK (btrim(name) <> ''),
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, sku)
);

CREATE TABLE inventory (
    tenant_id  uuid NOT NULL,
    store_id   uuid NOT NULL,
    product_id uuid NOT NULL,
    quantity   bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, store_id, product_id),
    FOREIGN KEY (tenant_id, store_id) REFERENCES stores (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id) ON DELETE CASCADE
);

-- The permission catalog of API.md.
INSERT INTO permissions (code, description) VALUES
    ('tenants.view', 'View the current tenant'),
    ('tenants.edit', 'Edit the current tenant'),
    ('users.view', 'List and view members'),
    ('users.invite', 'Invite new members'),
    ('users.edit', 'Suspend or reactivate members'),
    ('users.remove', 'Remove members from the tenant'),
    ('stores.view', 'List and view stores'),
    ('stores.create', 'Create stores'),
    ('stores.edit', 'Edit stores'),
    ('stores.delete', 'Delete stores'),
    ('stores.assign_users', 'Link members to stores'),
    ('roles.view', 'List and view roles'),
    ('roles.create', 'Create roles'),
    ('roles.edit', 'Edit roles and their permissions'),
    ('roles.delete', 'Delete roles'),
    ('roles.assign', 'Assign roles to members'),
    ('products.view', 'List and view products'),
    ('products.create', 'Create products'),
    ('products.edit', 'Edit products'),
    ('products.delete', 'Delete products'),
    ('inventory.view', 'View a store''s inventory'),
    ('inventory.adjust', 'Adjust a store''s inventory'),
    ('audit.view', 'Read the audit trail');

-- The runtime role's rights: data manipulation on what requests touch, nothing else.
-- No TRUNCATE, REFERENCES or TRIGGER, no ownership, nothing in schema auth.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM rowguard_api;
REVOKE ALL ON SCHEMA auth FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA app FROM PUBLIC;
GRANT USAGE ON SCHEMA public, app TO rowguard_api;
GRANT EXECUTE ON FUNCTION app.setting_uuid(text), app.current_tenant_id(),
    app.current_user_id(), app.current_store_id()
    TO rowguard_api;
GRANT SELECT ON permissions TO rowguard_api;
GRANT SELECT ON users TO rowguard_api;
GRANT UPDATE (full_name, updated_at) ON users TO rowguard_api;
GRANT SELECT, INSERT, UPDATE ON tenants TO rowguard_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON
    tenant_users, stores, store_users, roles, role_permissions, user_roles, products, inventory
    TO rowguard_api;
