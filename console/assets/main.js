// The console's shell: which page a path names, who is signed in (`/me`), the top bar
// (tenant switcher, sign-out) and the navigation, showing only the pages `/me`'s
// permissions allow (the API refuses the rest anyway). Pages are modules; those behind
// sign-in load on first use, so the first page load carries only the sign-in forms.

import { h, replace, form, selectField, announce } from './dom.js';
import { call, refresh, sessionEnded } from './api.js';
import * as session from './session.js';
import * as auth from './pages/auth.js';

/** @typedef {import('./api.js').Schemas['Me']} Me */

/**
 * What a page is given: the signed-in caller (null on public pages), a way to move to
 * another page, and to load `/me` again after a change of tenant or of one's roles.
 * @typedef {{
 *   me: Me | null,
 *   params: URLSearchParams,
 *   go: (page: string, query?: string) => void,
 *   signedIn: (pair: {access_token: string, refresh_token: string}, page?: string) => Promise<void>,
 *   reload: () => Promise<void>,
 *   can: (permission: string, store?: string | null) => boolean,
 * }} Context
 * @typedef {(main: HTMLElement, context: Context) => Promise<void> | void} Render
 * @typedef {{title: string, public?: boolean, nav?: boolean, allowed?: (me: Me) => boolean, render: () => Promise<Render>}} Page
 */

/** @param {string} permission */
const holds = (permission) => () => held.has(permission);

/** @type {{[path: string]: Page}} */
const pages = {
  'sign-in': { title: 'Sign in', public: true, render: async () => auth.signIn },
  'sign-up': { title: 'Create an account', public: true, render: async () => auth.signUp },
  'forgot-password': { title: 'Forgot your password', public: true, render: async () => auth.forgotPassword },
  'reset-password': { title: 'Choose a new password', public: true, render: async () => auth.resetPassword },
  'accept-invitation': { title: 'Accept an invitation', public: true, render: async () => auth.acceptInvitation },
  'verify-email': { title: 'Verify your email', public: true, render: async () => auth.verifyEmail },
  dashboard: { title: 'Dashboard', nav: true, render: async () => (await import('./pages/tenant.js')).dashboard },
  members: { title: 'Members', nav: true, allowed: holds('users.view'), render: async () => (await import('./pages/tenant.js')).members },
  roles: { title: 'Roles', nav: true, allowed: holds('roles.view'), render: async () => (await import('./pages/tenant.js')).roles },
  stores: { title: 'Stores', nav: true, allowed: holds('stores.view'), render: async () => (await import('./pages/catalog.js')).stores },
  products: { title: 'Products and inventory', nav: true, allowed: holds('products.view'), render: async () => (await import('./pages/catalog.js')).products },
  audit: { title: 'Audit log', nav: true, allowed: holds('audit.view'), render: async () => (await import('./pages/tenant.js')).audit },
  billing: { title: 'Billing', nav: true, allowed: holds('billing.view'), render: async () => (await import('./pages/billing.js')).billing },
  notifications: { title: 'Notifications', nav: true, render: async () => (await import('./pages/billing.js')).notifications },
  'api-keys': { title: 'API keys', nav: true, allowed: holds('api_keys.view'), render: async () => (await import('./pages/billing.js')).apiKeys },
  tenants: { title: 'Your tenants', nav: true, render: async () => (await import('./pages/tenant.js')).tenants },
  platform: { title: 'Platform', nav: true, allowed: (me) => me.user.is_platform_admin, render: async () => (await import('./pages/platform.js')).platform },
};

/** @type {Me | null} */
let me = null;
/**
 * What the caller holds anywhere in the tenant: `/me` answers the tenant-wide
 * permissions, and with `X-Store-ID` those effective in one store, so a store-scoped
 * Staff member holds theirs only through the stores of their roles.
 * @type {Set<string>}
 */
let held = new Set();
/** @type {Map<string, Set<string>>} the permissions effective in each store of the caller's roles */
let heldIn = new Map();

const main = /** @type {HTMLElement} */ (document.getElementById('main'));
const topBar = /** @type {HTMLElement} */ (document.getElementById('top-bar'));
const sideNav = /** @type {HTMLElement} */ (document.getElementById('side-nav'));

function currentPage() {
  const name = location.pathname.replace(/^\/console\/?/, '').replace(/\/$/, '');
  return name || (me ? 'dashboard' : 'sign-in');
}

/**
 * @param {string} page
 * @param {string} [query] without its `?`
 */
function go(page, query = '') {
  history.pushState(null, '', `/console/${page}${query ? `?${query}` : ''}`);
  void show();
}

/** @type {Context} */
const context = {
  get me() { return me; },
  get params() { return new URLSearchParams(location.search); },
  go,
  async signedIn(pair, page = 'dashboard') {
    session.keep(pair);
    await loadMe();
    go(page);
  },
  async reload() {
    await loadMe();
    drawChrome();
  },
  can(permission, store) {
    if (!store) return held.has(permission);
    return heldIn.get(store)?.has(permission) ?? me?.permissions.includes(/** @type {any} */ (permission)) ?? false;
  },
};

async function loadMe() {
  const caller = await call('get', '/api/v1/me');
  const stores = [...new Set(caller.roles.map((role) => role.store_id).filter((id) => id !== null && id !== undefined))];
  const inStores = await Promise.all(stores.map(async (store) => {
    const there = await call('get', '/api/v1/me', { store });
    return /** @type {[string, Set<string>]} */ ([store, new Set(there.permissions)]);
  }));
  heldIn = new Map(inStores);
  held = new Set([...caller.permissions, ...inStores.flatMap(([, set]) => [...set])]);
  me = caller;
}

let shown = 0;

async function show() {
  const ticket = ++shown;
  let name = currentPage();
  let page = pages[name];
  if (!page) {
    drawChrome();
    document.title = 'Not found · rowguard console';
    replace(main, h('h1', {}, 'No such page'), h('p', {}, h('a', { href: '/console/' }, 'Back to the console')));
    return;
  }
  if (!page.public && !me) {
    // Back to where they were going once signed in.
    history.replaceState(null, '', `/console/sign-in?next=${encodeURIComponent(name)}`);
    name = 'sign-in';
    page = pages[name];
  }
  drawChrome();
  const allowed = !page.allowed || (me !== null && page.allowed(me));
  document.title = `${page.title} · rowguard console`;
  if (!allowed) {
    replace(main, h('h1', {}, page.title), h('p', { class: 'notice' }, 'Your roles in this tenant do not allow this page.'));
    return;
  }
  const render = await page.render();
  if (ticket !== shown) return;
  replace(main);
  try {
    await render(main, context);
  } catch (error) {
    replace(main, h('h1', {}, page.title),
      h('p', { class: 'form-status error', role: 'alert' }, error instanceof Error ? error.message : 'The page could not be loaded.'));
  }
  if (ticket !== shown) return;
  main.dataset.page = name;
  // Moving focus to the new page's heading tells screen-reader and keyboard users the
  // page changed, as a full navigation would.
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
  announce(`${page.title} page`);
}

function drawChrome() {
  const brand = h('a', { class: 'brand', href: me ? '/console/dashboard' : '/console/sign-in' },
    h('img', { src: '/console/assets/icon.svg', alt: '', width: 24, height: 24 }), 'rowguard console');
  if (!me) {
    replace(topBar, brand);
    sideNav.hidden = true;
    replace(sideNav);
    return;
  }
  const signedIn = me;
  const tenants = signedIn.memberships.filter((m) => m.status === 'active');
  const switcher = form({
    label: 'Switch',
    props: { class: 'tenant-switcher', 'aria-label': 'Tenant switcher' },
    action: async (values) => {
      if (values.tenant_id === signedIn.tenant.id) return;
      const pair = await call('post', '/api/v1/auth/switch-tenant', { body: { tenant_id: values.tenant_id } });
      await context.signedIn(pair, 'dashboard');
      announce(`Switched to ${me?.tenant.name ?? 'the tenant'}`);
    },
  }, selectField('Tenant', 'tenant_id', tenants.map((m) => [m.tenant_id, m.tenant_name])));
  const select = /** @type {HTMLSelectElement} */ (switcher.querySelector('select'));
  select.value = signedIn.tenant.id;
  const signOut = h('button', { type: 'button', class: 'secondary', onclick: () => void signOutNow() }, 'Sign out');
  replace(topBar, brand, switcher,
    h('span', { class: 'who' }, signedIn.user.full_name, h('span', { class: 'muted' }, ` (${signedIn.user.email})`)),
    signOut);
  const active = currentPage();
  sideNav.hidden = false;
  replace(sideNav, h('ul', {}, Object.entries(pages)
    .filter(([, page]) => page.nav && (!page.allowed || page.allowed(signedIn)))
    .map(([path, page]) => h('li', {}, h('a', { href: `/console/${path}`, 'aria-current': path === active ? 'page' : null }, page.title)))));
}

async function signOutNow() {
  const token = session.refreshToken();
  try {
    if (token) await call('post', '/api/v1/auth/logout', { body: { refresh_token: token } });
  } finally {
    session.forget();
    me = null;
    held = new Set();
    heldIn = new Map();
    go('sign-in');
    announce('Signed out');
  }
}

// Links inside the console move without a reload (the access token lives in memory).
document.addEventListener('click', (event) => {
  const target = /** @type {Element | null} */ (event.target);
  const link = target?.closest('a');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith('/console')) return;
  event.preventDefault();
  history.pushState(null, '', url.pathname + url.search);
  void show();
});
window.addEventListener('popstate', () => void show());
sessionEnded.add(() => {
  me = null;
  go('sign-in');
});

async function start() {
  if (session.refreshToken() && (await refresh())) {
    try {
      await loadMe();
    } catch {
      me = null;
    }
  }
  await show();
  // Tests and the README's time-to-interactive figure read this mark.
  performance.mark('console-interactive');
  document.documentElement.dataset.ready = 'true';
}

void start();
