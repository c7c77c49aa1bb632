// The tenant's own pages: the dashboard, the tenants one belongs to (the switcher's
// long form), members and invitations, roles (the permission matrix) and the audit log.

import { h, append, replace, field, selectField, form, table, actionButton, showError, showDone, when, money, announce } from '../dom.js';
import { call, ApiError } from '../api.js';

/** @typedef {import('../main.js').Context} Context */
/** @typedef {import('../api.js').Schemas} Schemas */

/**
 * The RBAC guards in words (API.md, "RBAC"): the API answers 403 `forbidden` naming
 * the permission, or 409 `conflict` for the last Owner.
 * @param {unknown} error
 */
export function inWords(error) {
  if (error instanceof ApiError && error.status === 403 && error.code === 'forbidden') {
    const permission = /** @type {{permission?: string}} */ (error.problem).permission;
    return new ApiError(403, {
      ...error.problem,
      detail: `You cannot grant what you do not hold${permission ? `: you lack ${permission}` : ''}.`,
    });
  }
  return error;
}

/** @param {HTMLElement} main @param {Context} context */
export async function dashboard(main, context) {
  const me = /** @type {Schemas['Me']} */ (context.me);
  append(main, [h('h1', {}, me.tenant.name), h('p', { class: 'lead' }, `Signed in as ${me.user.full_name}.`)]);
  const grid = h('div', { class: 'cards' });
  append(main, [grid]);

  if (!me.user.email_verified) {
    const status = h('div', { class: 'form-status', role: 'status' });
    append(grid, [h('section', { class: 'card', 'aria-labelledby': 'verify-heading' },
      h('h2', { id: 'verify-heading' }, 'Verify your email'),
      h('p', {}, `We sent a link to ${me.user.email}.`),
      actionButton('Send the link again', async () => {
        await call('post', '/api/v1/me/verification-email');
        showDone(status, 'A new link is on its way.');
      }, status, { class: 'secondary' }),
      status)]);
  }

  const [subscription, usage, unread] = await Promise.all([
    context.can('subscriptions.view') ? call('get', '/api/v1/subscriptions/current') : null,
    context.can('usage.view') ? call('get', '/api/v1/usage/current') : null,
    call('get', '/api/v1/notifications/unread-count'),
  ]);
  if (subscription) {
    append(grid, [h('section', { class: 'card', 'aria-labelledby': 'plan-heading' },
      h('h2', { id: 'plan-heading' }, 'Subscription'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Plan'), h('dd', {}, `${subscription.plan.name} (${subscription.plan.price_minor === 0 ? 'free' : `${money(subscription.plan.price_minor, subscription.plan.currency)} a ${subscription.plan.interval}`})`),
        h('dt', {}, 'Status'), h('dd', {}, h('span', { class: `badge status-${subscription.status}` }, subscription.status.replace('_', ' '))),
        subscription.trial_end ? [h('dt', {}, 'Trial ends'), h('dd', {}, when(subscription.trial_end))] : null,
        h('dt', {}, 'Current period ends'), h('dd', {}, when(subscription.current_period_end)),
        subscription.pending_plan_code ? [h('dt', {}, 'Changing to'), h('dd', {}, subscription.pending_plan_code)] : null),
      context.can('billing.view') ? h('p', {}, h('a', { href: '/console/billing' }, 'Invoices and payments')) : null)]);
  }
  if (usage) {
    append(grid, [h('section', { class: 'card', 'aria-labelledby': 'usage-heading' },
      h('h2', { id: 'usage-heading' }, 'Usage this period'),
      h('ul', { class: 'meters' }, usage.metrics.map((metric) => {
        const label = metric.code.replace('_', ' ');
        const limit = metric.limit;
        return h('li', {},
          h('span', { class: 'meter-label', id: `meter-${metric.code}` }, label),
          limit === null || limit === undefined
            ? h('span', {}, `${metric.value} (no limit)`)
            : [h('progress', { max: limit, value: Math.min(metric.value, limit), 'aria-labelledby': `meter-${metric.code}` }),
              h('span', {}, `${metric.value} of ${limit}`)]);
      })))]);
  }
  append(grid, [h('section', { class: 'card', 'aria-labelledby': 'unread-heading' },
    h('h2', { id: 'unread-heading' }, 'Notifications'),
    h('p', { class: 'big-number', 'data-testid': 'unread-count' }, String(unread.count)),
    h('p', {}, h('a', { href: '/console/notifications' }, unread.count === 1 ? '1 unread notification' : `${unread.count} unread notifications`)))]);
}

/** @param {HTMLElement} main @param {Context} context */
export function tenants(main, context) {
  const me = /** @type {Schemas['Me']} */ (context.me);
  const status = h('div', { class: 'form-status', role: 'alert' });
  append(main, [h('h1', {}, 'Your tenants'), h('p', { class: 'lead' }, 'Every company you are a member of. Switching signs you in to that tenant.'), status,
    table('Memberships', [
      ['Tenant', (m) => m.tenant_name],
      ['Status', (m) => m.status],
      ['', (m) => m.tenant_id === me.tenant.id
        ? h('span', { class: 'badge' }, 'current')
        : m.status === 'active'
          ? actionButton(`Switch to ${m.tenant_name}`, async () => {
            const pair = await call('post', '/api/v1/auth/switch-tenant', { body: { tenant_id: m.tenant_id } });
            await context.signedIn(pair, 'dashboard');
            announce(`Switched to ${m.tenant_name}`);
          }, status)
          : null],
    ], me.memberships)]);
}

/** @param {HTMLElement} main @param {Context} context */
export async function members(main, context) {
  const status = h('div', { class: 'form-status', role: 'alert' });
  const list = h('div', {});
  const invitations = h('div', {});
  append(main, [h('h1', {}, 'Members'), status]);

  const [roleList, storeList] = await Promise.all([
    context.can('roles.view') ? call('get', '/api/v1/roles', { query: { limit: 100 } }) : null,
    context.can('stores.view') ? call('get', '/api/v1/stores', { query: { limit: 100 } }) : null,
  ]);
  const roles = roleList?.items ?? [];
  const stores = storeList?.items ?? [];
  /** @type {[string, string][]} */
  const storeOptions = [['', 'Every store (tenant-wide)'], ...stores.map((s) => /** @type {[string, string]} */ ([s.id, s.name]))];
  const storeName = (/** @type {string | null | undefined} */ id) => (id ? stores.find((s) => s.id === id)?.name ?? id : 'every store');

  if (context.can('users.invite') && roles.length > 0) {
    append(main, [h('section', { class: 'card', 'aria-labelledby': 'invite-heading' },
      h('h2', { id: 'invite-heading' }, 'Invite someone'),
      form({
        label: 'Send the invitation',
        props: { class: 'inline-form' },
        action: async (values, element) => {
          await call('post', '/api/v1/invitations', {
            body: { email: values.email, role_id: values.role_id, store_id: values.store_id || null },
          });
          element.reset();
          announce(`Invitation sent to ${values.email}`);
          await drawInvitations();
        },
      },
      field('Email', 'email', { type: 'email', required: true, autocomplete: 'off' }),
      selectField('Role', 'role_id', roles.map((r) => [r.id, r.name])),
      selectField('Store', 'store_id', storeOptions)))]);
  }
  append(main, [h('h2', {}, 'Team'), list, h('h2', {}, 'Pending invitations'), invitations]);

  async function drawMembers() {
    const page = await call('get', '/api/v1/users', { query: { limit: 100 } });
    replace(list, table('Members of this tenant', [
      ['Name', (m) => m.full_name],
      ['Email', (m) => m.email],
      ['Status', (m) => h('span', { class: `badge status-${m.status}` }, m.status)],
      ['Joined', (m) => when(m.joined_at)],
      ['Actions', (m) => h('div', { class: 'row-actions' },
        context.can('users.edit')
          ? actionButton(m.status === 'active' ? `Suspend ${m.full_name}` : `Reactivate ${m.full_name}`, async () => {
            await call('patch', '/api/v1/users/{id}', { path: { id: m.id }, body: { status: m.status === 'active' ? 'suspended' : 'active' } });
            await drawMembers();
          }, status, { class: 'secondary small' })
          : null,
        context.can('users.remove')
          ? actionButton(`Remove ${m.full_name}`, async () => {
            if (!confirm(`Remove ${m.full_name} from this tenant?`)) return;
            await call('delete', '/api/v1/users/{id}', { path: { id: m.id } });
            await drawMembers();
          }, status, { class: 'danger small' })
          : null,
        context.can('roles.view') ? roleEditor(m) : null)],
    ], page.items));
  }

  /** @param {Schemas['Member']} member */
  function roleEditor(member) {
    const details = h('details', { class: 'roles-of' }, h('summary', {}, `Roles of ${member.full_name}`));
    const body = h('div', {});
    details.append(body);
    details.addEventListener('toggle', async () => {
      if (!details.open) return;
      try {
        await draw();
      } catch (error) {
        showError(status, error);
      }
    });
    async function draw() {
      const assignments = await call('get', '/api/v1/users/{id}/roles', { path: { id: member.id } });
      replace(body,
        h('ul', {}, assignments.items.map((a) => h('li', {}, `${a.role_name} in ${storeName(a.store_id)} `,
          context.can('roles.assign')
            ? actionButton(`Take ${a.role_name} away`, async () => {
              await call('delete', '/api/v1/users/{id}/roles/{assignment_id}', { path: { id: member.id, assignment_id: a.id } })
                .catch((error) => { throw inWords(error); });
              await draw();
            }, status, { class: 'danger small' })
            : null))),
        context.can('roles.assign')
          ? form({
            label: 'Give the role',
            props: { class: 'inline-form' },
            action: async (values) => {
              await call('post', '/api/v1/users/{id}/roles', { path: { id: member.id }, body: { role_id: values.role_id, store_id: values.store_id || null } })
                .catch((error) => { throw inWords(error); });
              await draw();
            },
          }, selectField('Role', 'role_id', roles.map((r) => [r.id, r.name])), selectField('Store', 'store_id', storeOptions))
          : null);
    }
    return details;
  }

  async function drawInvitations() {
    const page = await call('get', '/api/v1/invitations', { query: { limit: 100 } });
    const roleName = (/** @type {string} */ id) => roles.find((r) => r.id === id)?.name ?? id;
    replace(invitations, table('Invitations', [
      ['Email', (i) => i.email],
      ['Role', (i) => roleName(i.role_id)],
      ['Store', (i) => storeName(i.store_id)],
      ['Status', (i) => i.status],
      ['Expires', (i) => when(i.expires_at)],
      ['', (i) => i.status === 'pending' && context.can('users.invite')
        ? actionButton(`Cancel the invitation of ${i.email}`, async () => {
          await call('delete', '/api/v1/invitations/{id}', { path: { id: i.id } });
          await drawInvitations();
        }, status, { class: 'secondary small' })
        : null],
    ], page.items, 'No invitations.'));
  }

  await Promise.all([drawMembers(), context.can('users.invite') || context.can('users.view') ? drawInvitations() : null]);
}

/** @param {HTMLElement} main @param {Context} context */
export async function roles(main, context) {
  const status = h('div', { class: 'form-status', role: 'alert' });
  const matrix = h('div', {});
  append(main, [h('h1', {}, 'Roles'),
    h('p', { class: 'lead' }, 'Which permissions each role grants. System roles cannot be edited; nobody grants a permission they do not hold.'),
    status, matrix]);
  const catalog = await call('get', '/api/v1/permissions');

  async function draw() {
    const list = await call('get', '/api/v1/roles', { query: { limit: 100 } });
    const editable = (/** @type {Schemas['Role']} */ role) => !role.is_system && context.can('roles.edit');
    /** @type {Map<string, Set<string>>} */
    const chosen = new Map(list.items.map((role) => [role.id, new Set(/** @type {string[]} */ (role.permissions))]));
    replace(matrix, h('div', { class: 'table-wrap' }, h('table', { class: 'matrix' },
      h('caption', {}, 'Permission matrix'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Permission'),
        list.items.map((role) => h('th', { scope: 'col' }, role.name, role.is_system ? h('span', { class: 'muted block' }, 'system') : null)))),
      h('tbody', {}, catalog.map((permission) => h('tr', {},
        h('th', { scope: 'row' }, h('code', {}, permission.code), h('span', { class: 'muted block' }, permission.description)),
        list.items.map((role) => {
          const box = h('input', {
            type: 'checkbox',
            'aria-label': `${role.name}: ${permission.code}`,
            checked: role.permissions.includes(permission.code),
            disabled: !editable(role),
          });
          box.addEventListener('change', () => {
            const set = chosen.get(role.id);
            if (box.checked) set?.add(permission.code); else set?.delete(permission.code);
          });
          return h('td', {}, box);
        })))),
      h('tfoot', {}, h('tr', {}, h('td', {}),
        list.items.map((role) => h('td', {},
          editable(role)
            ? actionButton(`Save ${role.name}`, async () => {
              await call('put', '/api/v1/roles/{id}/permissions', {
                path: { id: role.id },
                body: { permissions: /** @type {any} */ ([...(chosen.get(role.id) ?? [])]) },
              }).catch((error) => { throw inWords(error); });
              showDone(status, `${role.name} saved.`);
              await draw();
            }, status, { class: 'small' })
            : null,
          !role.is_system && context.can('roles.delete')
            ? actionButton(`Delete ${role.name}`, async () => {
              if (!confirm(`Delete the role ${role.name}?`)) return;
              await call('delete', '/api/v1/roles/{id}', { path: { id: role.id } });
              await draw();
            }, status, { class: 'danger small' })
            : null)))))));
  }

  if (context.can('roles.create')) {
    append(main, [h('section', { class: 'card', 'aria-labelledby': 'new-role-heading' },
      h('h2', { id: 'new-role-heading' }, 'New role'),
      form({
        label: 'Create the role',
        action: async (values, element) => {
          const permissions = [...element.querySelectorAll('input[name="permission"]:checked')]
            .map((box) => /** @type {HTMLInputElement} */ (box).value);
          await call('post', '/api/v1/roles', {
            body: { name: values.name, description: values.description || null, permissions: /** @type {any} */ (permissions) },
          }).catch((error) => { throw inWords(error); });
          element.reset();
          await draw();
        },
      },
      field('Name', 'name', { required: true }),
      field('Description', 'description'),
      h('fieldset', { class: 'checks' }, h('legend', {}, 'Permissions'),
        catalog.map((permission) => h('label', { class: 'check' },
          h('input', { type: 'checkbox', name: 'permission', value: permission.code }), ` ${permission.code}`))))) ]);
  }
  await draw();
}

/** @param {HTMLElement} main */
export async function audit(main) {
  const rows = h('div', {});
  const more = h('div', {});
  const status = h('div', { class: 'form-status', role: 'alert' });
  append(main, [h('h1', {}, 'Audit log'), h('p', { class: 'lead' }, 'Every change to roles, assignments, members, invitations and stores, newest first.'), status, rows, more]);
  /** @type {Schemas['AuditEvent'][]} */
  const events = [];
  /** @param {string | undefined} cursor */
  async function load(cursor) {
    const page = await call('get', '/api/v1/audit-events', { query: { limit: 50, cursor } });
    events.push(...page.items);
    replace(rows, table('Audit events', [
      ['When', (e) => when(e.created_at)],
      ['Action', (e) => h('code', {}, e.action)],
      ['Target', (e) => `${e.target_type}${e.target_id ? ` ${e.target_id.slice(0, 8)}` : ''}`],
      ['By', (e) => (e.actor_user_id ? e.actor_user_id.slice(0, 8) : 'the system')],
      ['Details', (e) => h('code', { class: 'details' }, JSON.stringify(e.details))],
    ], events, 'No events yet.'));
    const next = page.next_cursor;
    replace(more, next ? actionButton('Load older events', () => load(next), status, { class: 'secondary' }) : null);
  }
  await load(undefined);
}
