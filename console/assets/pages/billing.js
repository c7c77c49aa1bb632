// Billing (the subscription, invoices, paying one by M-Pesa), notifications and API
// keys.

import { h, append, replace, field, selectField, form, table, actionButton, showDone, showError, when, money, announce } from '../dom.js';
import { call } from '../api.js';

/** @typedef {import('../main.js').Context} Context */
/** @typedef {import('../api.js').Schemas} Schemas */

/** How often, and how long, the payment's status is asked for after the push. */
const POLL_MS = 1500;
const POLL_FOR_MS = 3 * 60 * 1000;

/** @param {HTMLElement} main @param {Context} context */
export async function billing(main, context) {
  const status = h('div', { class: 'form-status', role: 'alert' });
  const invoices = h('div', {});
  const history = h('div', {});
  const subscriptionBox = h('div', {});
  append(main, [h('h1', {}, 'Billing'), status, subscriptionBox,
    h('h2', {}, 'Invoices'), invoices, h('h2', {}, 'Payments'), history]);

  async function drawSubscription() {
    if (!context.can('subscriptions.view')) return;
    const [subscription, plans] = await Promise.all([
      call('get', '/api/v1/subscriptions/current'),
      call('get', '/api/v1/plans', { anonymous: true }),
    ]);
    replace(subscriptionBox, h('section', { class: 'card', 'aria-labelledby': 'subscription-heading' },
      h('h2', { id: 'subscription-heading' }, 'Subscription'),
      h('p', {}, `${subscription.plan.name}, `, h('span', { class: `badge status-${subscription.status}` }, subscription.status.replace('_', ' ')),
        `, this period ends ${new Date(subscription.current_period_end).toUTCString()}.`),
      subscription.pending_plan_code ? h('p', {}, `Changing to ${subscription.pending_plan_code}.`) : null,
      context.can('subscriptions.manage')
        ? form({
          label: 'Change the plan',
          props: { class: 'inline-form' },
          action: async (values) => {
            await call('put', '/api/v1/subscriptions/current', { body: { plan_code: values.plan_code } });
            await Promise.all([drawSubscription(), drawInvoices()]);
            await context.reload();
          },
        }, selectField('Plan', 'plan_code', plans.items.map((p) => [p.code, `${p.name} (${p.price_minor === 0 ? 'free' : money(p.price_minor, p.currency)})`])))
        : null));
    const select = subscriptionBox.querySelector('select');
    if (select) select.value = subscription.plan_code;
  }

  /** @param {Schemas['Invoice']} invoice */
  function payForm(invoice) {
    const region = h('div', { class: 'payment-status', role: 'status', 'aria-live': 'polite' });
    // One key per attempt of this form: a double submit is the same payment.
    let idempotencyKey = crypto.randomUUID();
    const payment = form({
      label: `Pay ${invoice.number} with M-Pesa`,
      props: { class: 'inline-form' },
      action: async (values) => {
        const started = await call('post', '/api/v1/payments/mpesa/initiate', {
          body: { invoice_id: invoice.id, phone_number: values.phone_number },
          idempotencyKey,
        });
        idempotencyKey = crypto.randomUUID();
        showDone(region, `Check your phone: enter your M-Pesa PIN to pay ${money(started.amount_minor, started.currency)}. ${started.customer_message}`);
        await follow(started.id, region);
      },
    }, field('M-Pesa phone number', 'phone_number', { type: 'tel', required: true, autocomplete: 'tel', placeholder: '0712345678' }, 'Safaricom number, e.g. 0712345678.'));
    return h('div', { class: 'pay' }, payment, region);
  }

  /**
   * Asks for the payment's status until it is final (the callback, or the
   * reconciliation job, decides it at the server); the invoice list follows.
   * @param {string} id
   * @param {HTMLElement} region
   */
  async function follow(id, region) {
    const until = Date.now() + POLL_FOR_MS;
    while (Date.now() < until && region.isConnected) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      const payment = await call('get', '/api/v1/payments/{id}', { path: { id } });
      if (payment.status === 'pending') continue;
      if (payment.status === 'succeeded') {
        announce('Payment received: the invoice is paid');
        await Promise.all([drawInvoices(), drawHistory(), drawSubscription()]);
        showDone(status, `Paid. M-Pesa receipt ${payment.mpesa_receipt_number ?? ''}.`);
      } else {
        showError(region, new Error(`The payment ${payment.status === 'cancelled' ? 'was cancelled on the phone' : payment.status === 'timeout' ? 'timed out' : 'failed'}${payment.result_desc ? `: ${payment.result_desc}` : ''}.`));
        await drawHistory();
      }
      return;
    }
  }

  async function drawInvoices() {
    const page = await call('get', '/api/v1/billing/invoices', { query: { limit: 50 } });
    replace(invoices, table('Invoices', [
      ['Number', (i) => i.number],
      ['Status', (i) => h('span', { class: `badge status-${i.status}`, 'data-testid': `invoice-status-${i.number}` }, i.status)],
      ['Total', (i) => money(i.total_minor, i.currency)],
      ['Period', (i) => [when(i.period_start), ' – ', when(i.period_end)]],
      ['Due', (i) => when(i.due_at)],
      ['Paid', (i) => when(i.paid_at)],
      ['', (i) => (i.status === 'open' && context.can('billing.pay') ? payForm(i) : null)],
    ], page.items, 'No invoices yet.'));
  }

  async function drawHistory() {
    const page = await call('get', '/api/v1/billing/history', { query: { limit: 20 } });
    replace(history, table('Payment attempts', [
      ['When', (p) => when(p.created_at)],
      ['Amount', (p) => money(p.amount_minor, p.currency)],
      ['Phone', (p) => p.phone_number],
      ['Status', (p) => h('span', { class: `badge status-${p.status}` }, p.status)],
      ['Receipt', (p) => p.mpesa_receipt_number ?? '—'],
    ], page.items, 'No payments yet.'));
  }

  await Promise.all([drawSubscription(), drawInvoices(), drawHistory()]);
}

/** @param {HTMLElement} main */
export async function notifications(main) {
  const status = h('div', { class: 'form-status', role: 'alert' });
  const list = h('div', {});
  let unreadOnly = false;
  const filter = h('input', { type: 'checkbox', id: 'unread-only' });
  filter.addEventListener('change', () => {
    unreadOnly = filter.checked;
    void draw();
  });
  append(main, [h('h1', {}, 'Notifications'), status,
    h('div', { class: 'toolbar' },
      h('label', { for: 'unread-only', class: 'check' }, filter, ' Unread only'),
      actionButton('Mark all as read', async () => {
        await call('post', '/api/v1/notifications/read-all');
        await draw();
      }, status, { class: 'secondary' })),
    list]);
  async function draw() {
    const page = await call('get', '/api/v1/notifications', { query: { limit: 50, unread: unreadOnly || undefined } });
    replace(list, page.items.length === 0
      ? h('p', { class: 'empty' }, 'No notifications.')
      : h('ul', { class: 'notifications' }, page.items.map((n) => h('li', { class: n.read_at ? 'read' : 'unread' },
        h('h2', { class: 'notification-title' }, n.title),
        h('p', {}, n.body),
        h('p', { class: 'muted' }, when(n.created_at), n.read_at ? ' · read' : ' · unread'),
        n.read_at ? null : actionButton(`Mark “${n.title}” as read`, async () => {
          await call('put', '/api/v1/notifications/{id}/read', { path: { id: n.id } });
          await draw();
        }, status, { class: 'secondary small' })))));
  }
  await draw();
}

/** @param {HTMLElement} main @param {Context} context */
export async function apiKeys(main, context) {
  const status = h('div', { class: 'form-status', role: 'alert' });
  const created = h('div', { role: 'status' });
  const list = h('div', {});
  append(main, [h('h1', {}, 'API keys'),
    h('p', { class: 'lead' }, 'A key acts for a program with at most your own permissions. Its secret is shown once, when it is created.'),
    status, created]);
  const me = /** @type {Schemas['Me']} */ (context.me);

  if (context.can('api_keys.manage')) {
    const inNinetyDays = new Date(Date.now() + 90 * 24 * 3600 * 1000).toISOString().slice(0, 10);
    append(main, [h('section', { class: 'card', 'aria-labelledby': 'new-key-heading' },
      h('h2', { id: 'new-key-heading' }, 'New key'),
      form({
        label: 'Create the key',
        action: async (values, element) => {
          const permissions = [...element.querySelectorAll('input[name="permission"]:checked')]
            .map((box) => /** @type {HTMLInputElement} */ (box).value);
          const key = await call('post', '/api/v1/api-keys', {
            body: {
              name: values.name,
              permissions: /** @type {any} */ (permissions),
              expires_at: new Date(`${values.expires_on}T23:59:59Z`).toISOString(),
            },
          });
          element.reset();
          showKey(key);
          await draw();
        },
      },
      field('Name', 'name', { required: true }, 'What uses it, e.g. "warehouse sync".'),
      field('Expires on', 'expires_on', { type: 'date', required: true, value: inNinetyDays }, 'At most a year from today.'),
      h('fieldset', { class: 'checks' }, h('legend', {}, 'Permissions'),
        me.permissions.filter((code) => !code.startsWith('api_keys.')).map((code) => h('label', { class: 'check' },
          h('input', { type: 'checkbox', name: 'permission', value: code }), ` ${code}`)))))]);
  }
  append(main, [list]);

  /** @param {Schemas['CreatedApiKey']} key */
  function showKey(key) {
    const secretId = 'created-key-secret';
    const secret = h('input', { id: secretId, type: 'text', readonly: true, value: key.key, class: 'secret', spellcheck: 'false' });
    const copied = h('span', { class: 'muted', 'aria-live': 'polite' });
    replace(created, h('section', { class: 'card created-key', 'aria-labelledby': 'created-key-heading' },
      h('h2', { id: 'created-key-heading' }, `Key “${key.name}” created`),
      h('p', {}, 'Copy it now: it is not shown again, and the server keeps only its hash.'),
      h('label', { for: secretId }, 'The key'),
      h('div', { class: 'copy-row' }, secret,
        h('button', {
          type: 'button',
          onclick: async () => {
            try {
              await navigator.clipboard.writeText(key.key);
              copied.textContent = 'Copied.';
            } catch {
              secret.select();
              copied.textContent = 'Select the key and copy it (Ctrl+C).';
            }
          },
        }, 'Copy'), copied),
      h('button', { type: 'button', class: 'secondary', onclick: () => replace(created) }, 'Done, hide it')));
    secret.focus();
  }

  async function draw() {
    const page = await call('get', '/api/v1/api-keys', { query: { limit: 100 } });
    replace(list, table('API keys', [
      ['Name', (k) => k.name],
      ['Prefix', (k) => h('code', {}, k.prefix)],
      ['Permissions', (k) => k.permissions.join(', ') || 'none'],
      ['Expires', (k) => when(k.expires_at)],
      ['Last used', (k) => when(k.last_used_at)],
      ['State', (k) => (k.revoked_at ? h('span', { class: 'badge status-revoked' }, 'revoked') : h('span', { class: 'badge status-active' }, 'active'))],
      ['', (k) => (!k.revoked_at && context.can('api_keys.manage')
        ? actionButton(`Revoke ${k.name}`, async () => {
          await call('delete', '/api/v1/api-keys/{id}', { path: { id: k.id } });
          announce(`Key ${k.name} revoked`);
          await draw();
        }, status, { class: 'danger small' })
        : null)],
    ], page.items, 'No keys yet.'));
  }
  await draw();
}
