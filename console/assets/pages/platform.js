// Platform administration (platform admins only; the API answers 403 to anyone
// else): every tenant, suspend or reactivate it, set its plan; the job queue's
// failed and dead jobs, retry one.

import { h, append, replace, selectField, form, table, actionButton, showDone, when } from '../dom.js';
import { call } from '../api.js';

/** @typedef {import('../main.js').Context} Context */

/** @param {HTMLElement} main */
export async function platform(main) {
  const status = h('div', { class: 'form-status', role: 'alert' });
  const tenants = h('div', {});
  const jobs = h('div', {});
  /** @type {'failed' | 'dead' | 'queued'} */
  let state = 'dead';
  const plans = await call('get', '/api/v1/plans', { anonymous: true });
  const chooser = selectField('Jobs in state', 'state', [['dead', 'dead'], ['failed', 'failed'], ['queued', 'queued']]);
  const select = /** @type {HTMLSelectElement} */ (chooser.querySelector('select'));
  select.addEventListener('change', () => {
    state = /** @type {'failed' | 'dead' | 'queued'} */ (select.value);
    void drawJobs();
  });
  append(main, [h('h1', {}, 'Platform'), status, h('h2', {}, 'Tenants'), tenants, h('h2', {}, 'Jobs'), h('div', { class: 'toolbar' }, chooser), jobs]);

  async function drawTenants() {
    const page = await call('get', '/api/v1/platform/tenants', { query: { limit: 100 } });
    replace(tenants, table('Tenants', [
      ['Name', (t) => t.name],
      ['Status', (t) => h('span', { class: `badge status-${t.status}` }, t.status)],
      ['Plan', (t) => `${t.plan_code ?? '—'} (${t.subscription_status ?? '—'})`],
      ['Members', (t) => String(t.members)],
      ['Created', (t) => when(t.created_at)],
      ['', (t) => h('div', { class: 'row-actions' },
        actionButton(t.status === 'active' ? `Suspend ${t.name}` : `Reactivate ${t.name}`, async () => {
          await call('patch', '/api/v1/platform/tenants/{id}', { path: { id: t.id }, body: { status: t.status === 'active' ? 'suspended' : 'active' } });
          await drawTenants();
        }, status, { class: t.status === 'active' ? 'danger small' : 'small' }),
        form({
          label: 'Set the plan',
          props: { class: 'inline-form compact' },
          action: async (values) => {
            await call('put', '/api/v1/platform/tenants/{id}/subscription', { path: { id: t.id }, body: { plan_code: values.plan_code } });
            showDone(status, `${t.name} is on ${values.plan_code}.`);
            await drawTenants();
          },
        }, selectField(`Plan of ${t.name}`, 'plan_code', plans.items.map((p) => [p.code, p.name]))))],
    ], page.items, 'No tenants.'));
  }

  async function drawJobs() {
    const page = await call('get', '/api/v1/platform/jobs', { query: { state, limit: 100 } });
    replace(jobs, table('Jobs', [
      ['Id', (j) => String(j.id)],
      ['Kind', (j) => h('code', {}, j.kind)],
      ['Attempts', (j) => `${j.attempts} of ${j.max_attempts}`],
      ['Last error', (j) => j.last_error ?? '—'],
      ['Run at', (j) => when(j.run_at)],
      ['', (j) => (j.state === 'queued' ? null : actionButton(`Retry job ${j.id}`, async () => {
        await call('post', '/api/v1/platform/jobs/{id}/retry', { path: { id: j.id } });
        showDone(status, `Job ${j.id} queued again.`);
        await drawJobs();
      }, status, { class: 'small' }))],
    ], page.items, `No ${state} jobs.`));
  }
  await Promise.all([drawTenants(), drawJobs()]);
}
