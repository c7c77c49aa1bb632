-- A tenant's life after registration (docs/api.md Part 2, "Tenants: more than one,
-- export, deletion"; module src/modules/tenant_lifecycle): a person creates more
-- tenants, a tenant deletes itself, and the `tenants.purge` job erases a deleted
-- tenant's rows once ROWGUARD_TENANT_PURGE_DAYS have passed.

-- `deleted` is final: the tenant's members, tokens and keys are refused from the next
-- request (the opening statement admits only `active` tenants), and nothing brings it
-- back (app.set_tenant_status below leaves it alone): its sessions and keys were
-- ended, and the purge is on its way.
ALTER TABLE tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check
    CHECK (status IN ('active', 'suspended', 'deleted'));
ALTER TABLE tenants ADD COLUMN deleted_at timestamptz;
ALTER TABLE tenants ADD CONSTRAINT tenants_deleted_at_check
    CHECK ((status = 'deleted') = (deleted_at IS NOT NULL));
-- Who created the tenant (registration, bootstrap, POST /tenants): the default reads
-- the creating transaction's context, whose user is the creator in every one of those
-- flows. Counted against ROWGUARD_MAX_TENANTS_PER_USER. users is global, not a tenant
-- table: the reference carries no tenant_id.
ALTER TABLE tenants ADD COLUMN created_by uuid
    DEFAULT app.current_user_id() REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX tenants_created_by ON tenants (created_by) WHERE created_by IS NOT NULL;
-- The purge's sweep: the deleted tenants, oldest deletion first.
CREATE INDEX tenants_deleted ON tenants (deleted_at, id) WHERE status = 'deleted';

-- Whether the current user may create one more tenant: the tenants they created (a
-- deleted one counts until it is purged, so deleting and creating again does not
-- escape the limit). The user's row is locked, so two concurrent creations of one
-- person take turns and cannot both pass at the limit. A definer: the runtime role
-- sees only the tenant of its context.
CREATE FUNCTION app.tenants_created_by_current_user() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM 1 FROM public.users AS u WHERE u.id = app.current_user_id() FOR UPDATE;
    RETURN (SELECT count(*) FROM public.tenants AS t WHERE t.created_by = app.current_user_id());
END
$$;

-- DELETE /tenants/current: the context's tenant becomes `deleted` at once, every
-- session acting in it ends and every key of it is revoked, so its tokens and keys
-- answer 401 from the next request (the opening statement's session and key checks),
-- not merely 403. Only for a caller who holds tenants.delete tenant-wide (the route
-- checked already: the function holds by itself). Returns the deletion's time, or
-- NULL when the tenant is not there or already deleted.
CREATE FUNCTION app.delete_current_tenant() RETURNS timestamptz
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant uuid := app.current_tenant_id();
    v_deleted_at timestamptz;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM public.user_roles AS ur
                   JOIN public.role_permissions AS rp
                     ON rp.tenant_id = ur.tenant_id AND rp.role_id = ur.role_id
                   WHERE ur.tenant_id = v_tenant AND ur.user_id = app.current_user_id()
                     AND ur.store_id IS NULL AND rp.permission_code = 'tenants.delete') THEN
        RAISE EXCEPTION 'tenants.delete required' USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE public.tenants AS t SET status = 'deleted', deleted_at = now(), updated_at = now()
    WHERE t.id = v_tenant AND t.status <> 'deleted'
    RETURNING t.deleted_at INTO v_deleted_at;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    UPDATE auth.refresh_tokens AS r SET revoked_at = now()
    WHERE r.tenant_id = v_tenant AND r.revoked_at IS NULL;
    UPDATE public.api_keys AS k SET revoked_at = now()
    WHERE k.tenant_id = v_tenant AND k.revoked_at IS NULL;
    RETURN v_deleted_at;
END
$$;

-- The tenants.purge job: erases one tenant deleted at or before p_deleted_before, every
-- row of it in every table, and answers its id (NULL: none is due). One tenant per
-- call, so each erasure is a transaction of its own and a sweep of many holds no
-- long transaction; SKIP LOCKED lets two sweeps share the work.
--
-- The erasure is the tenant row's delete: every tenant table references tenants with
-- ON DELETE CASCADE (invariant 5), directly or through a composite key. The two
-- references that do not cascade (user_roles and invitations to roles, which keep a
-- role in use from being deleted) are emptied first. Then the catalog is asked, for
-- every table with a tenant_id column in any schema, whether a row of the tenant is
-- left: a new table whose reference does not cascade makes the job fail (and retry,
-- then `dead`, visible to the operator) instead of leaving rows behind silently.
--
-- The context is the erased tenant's, so even under forced row-level security the
-- statements reach its rows and no other tenant's. Granted to the machinery's role
-- only (rowguard_auth), never to a request's.
CREATE FUNCTION app.purge_deleted_tenant(p_deleted_before timestamptz) RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant uuid;
    v_table record;
    v_left boolean;
BEGIN
    SELECT t.id INTO v_tenant FROM public.tenants AS t
    WHERE t.status = 'deleted' AND t.deleted_at <= p_deleted_before
    ORDER BY t.deleted_at, t.id
    LIMIT 1
    FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('app.tenant_id', v_tenant::text, true);
    PERFORM set_config('app.store_id', '', true);
    DELETE FROM public.user_roles WHERE tenant_id = v_tenant;
    DELETE FROM public.invitations WHERE tenant_id = v_tenant;
    DELETE FROM public.tenants WHERE id = v_tenant;
    FOR v_table IN
        SELECT n.nspname, c.relname
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    LOOP
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I WHERE tenant_id = $1)',
                       v_table.nspname, v_table.relname)
            INTO v_left USING v_tenant;
        IF v_left THEN
            RAISE EXCEPTION 'purging tenant %: rows left in %.%', v_tenant,
                v_table.nspname, v_table.relname;
        END IF;
    END LOOP;
    RETURN v_tenant;
END
$$;

-- The current user's memberships (V3), without deleted tenants: a deleted tenant is
-- gone for its members (/me does not list it, login does not pick it, switching to it
-- is 404) although its rows wait for the purge.
CREATE OR REPLACE FUNCTION app.current_user_memberships()
    RETURNS TABLE (tenant_id uuid, tenant_name text, tenant_status text, member_status text,
                   last_used_at timestamptz, joined_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.id, t.name, t.status, tu.status, tu.last_used_at, tu.created_at
    FROM public.tenant_users AS tu JOIN public.tenants AS t ON t.id = tu.tenant_id
    WHERE tu.user_id = app.current_user_id() AND t.status <> 'deleted'
    ORDER BY tu.last_used_at DESC NULLS LAST, tu.created_at, t.id
$$;

-- Suspending or reactivating (V18) leaves a deleted tenant deleted: false, as for a
-- tenant that does not exist.
CREATE OR REPLACE FUNCTION app.set_tenant_status(p_tenant_id uuid, p_status text) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_status NOT IN ('active', 'suspended') THEN
        RAISE EXCEPTION 'a tenant is set active or suspended, not %', p_status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE public.tenants SET status = p_status, updated_at = now()
    WHERE id = p_tenant_id AND status <> 'deleted';
    RETURN FOUND;
END
$$;

REVOKE ALL ON FUNCTION app.tenants_created_by_current_user(), app.delete_current_tenant(),
    app.purge_deleted_tenant(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.tenants_created_by_current_user(), app.delete_current_tenant()
    TO rowguard_api;
-- rowguard_auth inherits rowguard_api's; the purge is its alone (the job's machinery).
GRANT EXECUTE ON FUNCTION app.purge_deleted_tenant(timestamptz) TO rowguard_auth;
