-- rbac: what the system roles of a NEW tenant hold, as data instead of a list inside
-- app.create_system_roles(), so that a feature module's migration gives its new
-- permissions to the system roles with an INSERT here (and, for existing tenants,
-- an INSERT into role_permissions in the same migration).
--
-- Owner is not listed: it holds every permission of the catalog, always. The rows
-- below are the defaults of V3 unchanged: Admin everything but tenants.edit, Store
-- Manager and Staff their store-level lists.
CREATE TABLE app.system_role_grants (
    role_name       text NOT NULL CHECK (role_name IN ('Admin', 'Store Manager', 'Staff')),
    permission_code text NOT NULL REFERENCES public.permissions (code) ON DELETE CASCADE,
    PRIMARY KEY (role_name, permission_code)
);
COMMENT ON TABLE app.system_role_grants IS
    'Permissions the system roles Admin, Store Manager and Staff get in a new tenant (Owner gets all).';

INSERT INTO app.system_role_grants (role_name, permission_code)
SELECT 'Admin', code FROM public.permissions WHERE code <> 'tenants.edit'
UNION ALL
SELECT 'Store Manager', code FROM public.permissions
WHERE code IN ('tenants.view', 'users.view', 'stores.view', 'stores.edit', 'stores.assign_users',
               'roles.view', 'products.view', 'products.create', 'products.edit',
               'inventory.view', 'inventory.adjust')
UNION ALL
SELECT 'Staff', code FROM public.permissions
WHERE code IN ('tenants.view', 'stores.view', 'products.view', 'inventory.view', 'inventory.adjust');

-- Read by app.create_system_roles(), which runs as the runtime role (SECURITY
-- INVOKER, under the new tenant's row-level security).
GRANT SELECT ON app.system_role_grants TO rowguard_api;

CREATE OR REPLACE FUNCTION app.create_system_roles() RETURNS uuid
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_tenant uuid := app.current_tenant_id();
    v_owner uuid := gen_random_uuid();
BEGIN
    INSERT INTO public.roles (tenant_id, id, name, description, is_system) VALUES
        (v_tenant, v_owner, 'Owner', 'Every permission; cannot be changed; a tenant always keeps one', true),
        (v_tenant, gen_random_uuid(), 'Admin', 'Runs the tenant: everything but editing the tenant itself', true),
        (v_tenant, gen_random_uuid(), 'Store Manager', 'Runs stores: their staff, products and inventory', true),
        (v_tenant, gen_random_uuid(), 'Staff', 'Works in a store: sees products, keeps inventory', true);
    INSERT INTO public.role_permissions (tenant_id, role_id, permission_code)
    SELECT v_tenant, v_owner, p.code FROM public.permissions AS p
    UNION ALL
    SELECT v_tenant, r.id, g.permission_code
    FROM app.system_role_grants AS g
    JOIN public.roles AS r ON r.tenant_id = v_tenant AND r.is_system AND r.name = g.role_name;
    RETURN v_owner;
END
$$;
