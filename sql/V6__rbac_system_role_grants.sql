-- rbac: what the system roles of a NEW tenant hold, as data instead of lists inside
-- app.create_system_roles(), so that a feature module's migration decides it for its
-- own permissions with an INSERT (and, for existing tenants, an INSERT into
-- role_permissions in the same migration).
--
--   Owner          every permission of the catalog, always (nothing to declare);
--   Admin          every permission but those in app.admin_withheld_permissions, so a
--                  new module's permissions reach Admin unless its migration withholds
--                  them;
--   Store Manager, Staff
--                  exactly the rows of app.system_role_grants.
--
-- The rows below are V3's defaults unchanged: Admin everything but tenants.edit, Store
-- Manager and Staff their store-level lists.
CREATE TABLE app.admin_withheld_permissions (
    permission_code text PRIMARY KEY REFERENCES public.permissions (code) ON DELETE CASCADE
);
COMMENT ON TABLE app.admin_withheld_permissions IS
    'Permissions the system role Admin does not get in a new tenant (it gets every other).';

CREATE TABLE app.system_role_grants (
    role_name       text NOT NULL CHECK (role_name IN ('Store Manager', 'Staff')),
    permission_code text NOT NULL REFERENCES public.permissions (code) ON DELETE CASCADE,
    PRIMARY KEY (role_name, permission_code)
);
COMMENT ON TABLE app.system_role_grants IS
    'Permissions the system roles Store Manager and Staff get in a new tenant.';

INSERT INTO app.admin_withheld_permissions (permission_code) VALUES ('tenants.edit');

INSERT INTO app.system_role_grants (role_name, permission_code)
SELECT 'Store Manager', code FROM public.permissions
WHERE code IN ('tenants.view', 'users.view', 'stores.view', 'stores.edit', 'stores.assign_users',
               'roles.view', 'products.view', 'products.create', 'products.edit',
               'inventory.view', 'inventory.adjust')
UNION ALL
SELECT 'Staff', code FROM public.permissions
WHERE code IN ('tenants.view', 'stores.view', 'products.view', 'inventory.view', 'inventory.adjust');

-- Read by app.create_system_roles(), which runs as the runtime role (SECURITY
-- INVOKER, under the new tenant's row-level security).
GRANT SELECT ON app.admin_withheld_permissions, app.system_role_grants TO rowguard_api;

CREATE OR REPLACE FUNCTION app.create_system_roles() RETURNS uuid
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_tenant uuid := app.current_tenant_id();
    v_owner uuid := gen_random_uuid();
    v_admin uuid := gen_random_uuid();
BEGIN
    INSERT INTO public.roles (tenant_id, id, name, description, is_system) VALUES
        (v_tenant, v_owner, 'Owner', 'Every permission; cannot be changed; a tenant always keeps one', true),
        (v_tenant, v_admin, 'Admin', 'Runs the tenant: everything but editing the tenant itself', true),
        (v_tenant, gen_random_uuid(), 'Store Manager', 'Runs stores: their staff, products and inventory', true),
        (v_tenant, gen_random_uuid(), 'Staff', 'Works in a store: sees products, keeps inventory', true);
    INSERT INTO public.role_permissions (tenant_id, role_id, permission_code)
    SELECT v_tenant, v_owner, p.code FROM public.permissions AS p
    UNION ALL
    SELECT v_tenant, v_admin, p.code FROM public.permissions AS p
    WHERE NOT EXISTS (SELECT 1 FROM app.admin_withheld_permissions AS w WHERE w.permission_code = p.code)
    UNION ALL
    SELECT v_tenant, r.id, g.permission_code
    FROM app.system_role_grants AS g
    JOIN public.roles AS r ON r.tenant_id = v_tenant AND r.is_system AND r.name = g.role_name;
    RETURN v_owner;
END
$$;
