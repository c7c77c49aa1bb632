// Stores (create, edit, the people assigned to each) and the reference feature module:
// products, and each store's inventory (adjust stock).

import { h, append, replace, field, selectField, form, table, actionButton, showDone, showError, when, money, announce } from '../dom.js';
import { call } from '../api.js';

/** @typedef {import('../main.js').Context} Context */
/** @typedef {import('../api.js').Schemas} Schemas */

/** @param {HTMLElement} main @param {Context} context */
export async function stores(main, context) {
  const status = h('div', { class: 'form-status', role: 'alert' });
  const list = h('div', {});
  append(main, [h('h1', {}, 'Stores'), status]);
  const members = context.can('users.view') ? (await call('get', '/api/v1/users', { query: { limit: 100 } })).items : [];

  if (context.can('stores.create')) {
    append(main, [h('section', { class: 'card', 'aria-labelledby': 'new-store-heading' },
      h('h2', { id: 'new-store-heading' }, 'New store'),
      form({
        label: 'Create the store',
        props: { class: 'inline-form' },
        action: async (values, element) => {
          const store = await call('post', '/api/v1/stores', {
            body: { name: values.name, code: values.code || null, address: values.address || null },
          });
          element.reset();
          announce(`Store ${store.name} created`);
          await draw();
        },
      },
      field('Name', 'name', { required: true }),
      field('Code', 'code', {}, 'Optional, e.g. NBO-1.'),
      field('Address', 'address')))]);
  }
  append(main, [list]);

  /** @param {Schemas['Store']} store */
  function editor(store) {
    const details = h('details', {}, h('summary', {}, `Edit ${store.name}`));
    details.append(form({
      label: 'Save',
      props: { class: 'inline-form' },
      action: async (values) => {
        await call('patch', '/api/v1/stores/{id}', {
          path: { id: store.id },
          body: { name: values.name, code: values.code || null, address: values.address || null },
        });
        showDone(status, `${values.name} saved.`);
        await draw();
      },
    },
    field('Name', 'name', { required: true, value: store.name }),
    field('Code', 'code', { value: store.code ?? '' }),
    field('Address', 'address', { value: store.address ?? '' })));
    return details;
  }

  /** @param {Schemas['Store']} store */
  function people(store) {
    const details = h('details', {}, h('summary', {}, `People in ${store.name}`));
    const body = h('div', {});
    details.append(body);
    async function drawPeople() {
      const assigned = await call('get', '/api/v1/stores/{id}/users', { path: { id: store.id } });
      const ids = new Set(assigned.items.map((m) => m.id));
      replace(body,
        h('ul', {}, assigned.items.map((m) => h('li', {}, `${m.full_name} (${m.email}) `,
          actionButton(`Unassign ${m.full_name}`, async () => {
            await call('delete', '/api/v1/stores/{id}/users/{user_id}', { path: { id: store.id, user_id: m.id } });
            await drawPeople();
          }, status, { class: 'secondary small' })))),
        members.some((m) => !ids.has(m.id))
          ? form({
            label: 'Assign',
            props: { class: 'inline-form' },
            action: async (values) => {
              await call('put', '/api/v1/stores/{id}/users/{user_id}', { path: { id: store.id, user_id: values.user_id } });
              await drawPeople();
            },
          }, selectField('Member', 'user_id', members.filter((m) => !ids.has(m.id)).map((m) => [m.id, m.full_name])))
          : null);
    }
    details.addEventListener('toggle', () => { if (details.open) drawPeople().catch((error) => { status.textContent = error.message; }); });
    return details;
  }

  async function draw() {
    const page = await call('get', '/api/v1/stores', { query: { limit: 100 } });
    replace(list, table('Stores', [
      ['Name', (s) => s.name],
      ['Code', (s) => s.code ?? '—'],
      ['Address', (s) => s.address ?? '—'],
      ['Status', (s) => s.status],
      ['Created', (s) => when(s.created_at)],
      ['', (s) => h('div', { class: 'row-actions' },
        context.can('stores.edit', s.id) ? editor(s) : null,
        context.can('stores.assign_users', s.id) ? people(s) : null,
        context.can('stores.delete', s.id)
          ? actionButton(`Delete ${s.name}`, async () => {
            if (!confirm(`Delete the store ${s.name}?`)) return;
            await call('delete', '/api/v1/stores/{id}', { path: { id: s.id } });
            await draw();
          }, status, { class: 'danger small' })
          : null)],
    ], page.items, 'No stores yet.'));
  }
  await draw();
}

/** A refusal or failure, shown where the data would have been. @param {unknown} error */
function problem(error) {
  const region = h('div', { role: 'alert' });
  showError(region, error);
  return region;
}

/** @param {HTMLElement} main @param {Context} context */
export async function products(main, context) {
  const status = h('div', { class: 'form-status', role: 'alert' });
  const catalog = h('div', {});
  const stock = h('div', {});
  append(main, [h('h1', {}, 'Products and inventory'), status]);
  const reachable = context.can('stores.view') ? (await call('get', '/api/v1/stores', { query: { limit: 100 } })).items : [];
  /** The store every call acts in (`X-Store-ID`): a store-scoped member's grants live there. */
  let store = reachable[0]?.id ?? null;
  /** @type {Schemas['Product'][]} */
  let items = [];

  if (reachable.length > 0) {
    const chooser = selectField('Store', 'store', reachable.map((s) => [s.id, s.name]));
    const select = /** @type {HTMLSelectElement} */ (chooser.querySelector('select'));
    select.addEventListener('change', () => {
      store = select.value;
      void drawAll();
    });
    append(main, [h('div', { class: 'card store-chooser' }, chooser)]);
  }
  const forms = h('div', { class: 'cards' });
  append(main, [forms, h('h2', {}, 'Catalog'), catalog, h('h2', {}, 'Stock in this store'), stock]);

  async function drawAll() {
    replace(forms);
    if (context.can('products.create', store)) {
      append(forms, [h('section', { class: 'card', 'aria-labelledby': 'new-product-heading' },
        h('h2', { id: 'new-product-heading' }, 'New product'),
        form({
          label: 'Add the product',
          action: async (values, element) => {
            const product = await call('post', '/api/v1/products', {
              body: { sku: values.sku, name: values.name, price_cents: Math.round(Number(values.price) * 100) },
              store,
            });
            element.reset();
            announce(`Product ${product.name} added`);
            await drawAll();
          },
        },
        field('SKU', 'sku', { required: true }),
        field('Name', 'name', { required: true }),
        field('Price (KES)', 'price', { type: 'number', min: 0, step: '0.01', required: true, inputmode: 'decimal' })))]);
    }
    // The catalog needs products.view tenant-wide; a store's staff may still keep its
    // stock, so a refusal here is shown in place and the stock below still drawn.
    const tenantWide = /** @type {Schemas['Me']} */ (context.me).permissions.includes('products.view');
    try {
      if (!tenantWide) {
        items = [];
        replace(catalog, h('p', { class: 'empty' }, 'The catalog is kept tenant-wide; your roles show this store’s stock.'));
        await drawStock();
        return;
      }
      const page = await call('get', '/api/v1/products', { query: { limit: 100 }, store });
      items = page.items;
      replace(catalog, table('Products', [
        ['SKU', (p) => h('code', {}, p.sku)],
        ['Name', (p) => p.name],
        ['Price', (p) => money(p.price_cents, 'KES')],
        ['Updated', (p) => when(p.updated_at)],
      ], items, 'No products yet.'));
    } catch (error) {
      items = [];
      replace(catalog, problem(error));
    }
    await drawStock();
  }

  async function drawStock() {
    if (!store) {
      replace(stock, h('p', { class: 'empty' }, 'Create a store to keep inventory.'));
      return;
    }
    if (!context.can('inventory.view', store)) {
      replace(stock, h('p', { class: 'empty' }, 'Your roles do not show this store’s inventory.'));
      return;
    }
    /** @type {Schemas['StockList']} */
    let rows;
    try {
      rows = await call('get', '/api/v1/inventory', { query: { limit: 100 }, store });
    } catch (error) {
      replace(stock, problem(error));
      return;
    }
    /** @type {[string, string][]} */
    const choices = items.length > 0
      ? items.map((p) => [p.id, `${p.name} (${p.sku})`])
      : rows.items.map((s) => [s.product_id, `${s.name} (${s.sku})`]);
    replace(stock, table('Stock', [
      ['SKU', (s) => h('code', {}, s.sku)],
      ['Name', (s) => s.name],
      ['Quantity', (s) => h('span', { 'data-testid': `quantity-${s.sku}` }, String(s.quantity))],
      ['Updated', (s) => when(s.updated_at)],
    ], rows.items, 'Nothing in stock yet.'),
    context.can('inventory.adjust', store) && choices.length > 0
      ? h('section', { class: 'card', 'aria-labelledby': 'adjust-heading' },
        h('h3', { id: 'adjust-heading' }, 'Adjust stock'),
        form({
          label: 'Adjust',
          props: { class: 'inline-form' },
          action: async (values, element) => {
            const adjustment = await call('post', '/api/v1/inventory/adjustments', {
              body: { product_id: values.product_id, delta: Number(values.delta), reason: values.reason },
              store,
            });
            element.reset();
            announce(`Stock is now ${adjustment.quantity}`);
            await drawStock();
          },
        },
        selectField('Product', 'product_id', choices),
        field('Change', 'delta', { type: 'number', step: 1, required: true }, 'Positive to add, negative to remove.'),
        field('Reason', 'reason', { required: true })))
      : null);
  }
  try {
    await drawAll();
  } catch (error) {
    replace(catalog);
    throw error;
  }
}
