// The admin console end to end, in Debian's headless Chromium driven by
// playwright-core, against the real server (harness.mjs): sign-up and email
// verification, stores, products and stock, an invited member who sees only what
// their role allows, API keys, paying an invoice by M-Pesa through the fake Daraja,
// a password reset, the tenant switcher, platform administration. Every page is
// checked with axe-core (no serious or critical violation) and walked with the
// keyboard; no page may trip the Content-Security-Policy. Screenshots of the main
// pages go to docs/console/. The run prints the first page's time to interactive
// and bytes transferred.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { startSystem } from './harness.mjs';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const SHOTS = new URL('../../docs/console/', import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** Each step's limit: a hung page fails its step instead of the whole run. */
const STEP = { timeout: 90_000 };

/** @type {Awaited<ReturnType<typeof startSystem>>} */
let system;
/** @type {import('playwright-core').Browser} */
let browser;

const owner = { email: 'wanjiru@duka.example', password: 'owner-pass-1234', name: 'Wanjiru Kamau', tenant: 'Duka Supplies' };
const staff = { email: 'otieno@duka.example', password: 'staff-pass-1234', name: 'Otieno Ouma' };
const admin = { email: 'ops@rowguard.example', password: 'admin-pass-1234', name: 'Platform Ops', tenant: 'rowguard ops' };
const other = { email: 'amina@pwani.example', password: 'other-pass-1234', name: 'Amina Hassan', tenant: 'Pwani Traders' };

/** Pages each test opened, each with what went wrong on it. */
/** @type {{page: import('playwright-core').Page, problems: string[]}[]} */
const opened = [];

/** A fresh browser context (its own sessionStorage), watched for CSP and script errors. */
async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, baseURL: system.baseUrl });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: system.baseUrl });
  const page = await context.newPage();
  /** @type {string[]} */
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content.Security.Policy|Refused to/i.test(message.text())) problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  opened.push({ page, problems });
  page.setDefaultTimeout(15000);
  return page;
}

/** @param {import('playwright-core').Page} page */
function problemsOf(page) {
  return opened.find((entry) => entry.page === page)?.problems ?? [];
}

/** @param {import('playwright-core').Page} page @param {string} path */
async function open(page, path) {
  await page.goto(path);
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true');
  await page.locator('main h1').first().waitFor();
}

/**
 * Moves inside the console as a person would, by its navigation.
 * @param {import('playwright-core').Page} page @param {string} name
 */
async function navigate(page, name) {
  await page.getByRole('navigation', { name: 'Console pages' }).getByRole('link', { name, exact: true }).click();
  await page.locator('main h1', { hasText: name === 'Dashboard' ? /./ : name }).first().waitFor();
}

/** @param {import('playwright-core').Page} page @param {{email: string, password: string}} who */
async function signIn(page, who) {
  await open(page, '/console/sign-in');
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/**
 * axe-core on the page as it is now: no serious or critical violation. Injected by
 * the DevTools protocol (page.evaluate), which the page's CSP does not govern.
 * @param {import('playwright-core').Page} page @param {string} name
 */
async function assertAccessible(page, name) {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    // @ts-ignore axe is what the script above defined
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((/** @type {any} */ v) => v.impact === 'serious' || v.impact === 'critical')
      .map((/** @type {any} */ v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((/** @type {any} */ n) => n.target.join(' ')).slice(0, 3).join(', ')})`);
  });
  assert.deepEqual(violations, [], `${name}: accessibility violations`);
}

/**
 * Every visible form control of the page's main region is reached by Tab alone (a
 * radio group counts once: arrows move inside it).
 * @param {import('playwright-core').Page} page @param {string} name
 */
async function assertKeyboardReachable(page, name) {
  const count = await page.evaluate(() => {
    const seenGroups = new Set();
    let n = 0;
    for (const element of document.querySelectorAll('main input, main select, main button, main textarea, main summary')) {
      const control = /** @type {HTMLInputElement} */ (element);
      if (control.disabled || !control.checkVisibility()) continue;
      if (control.type === 'radio') {
        if (seenGroups.has(control.name)) continue;
        seenGroups.add(control.name);
      }
      control.dataset.kb = String(n++);
    }
    return n;
  });
  await page.evaluate(() => { /** @type {HTMLElement} */ (document.activeElement)?.blur(); window.scrollTo(0, 0); });
  const reached = new Set();
  for (let press = 0; press < count + 60 && reached.size < count; press++) {
    await page.keyboard.press('Tab');
    const id = await page.evaluate(() => {
      const active = /** @type {HTMLElement | null} */ (document.activeElement);
      if (active instanceof HTMLInputElement && active.type === 'radio') {
        return document.querySelector(`main input[type=radio][name="${active.name}"][data-kb]`)?.getAttribute('data-kb') ?? null;
      }
      return active?.dataset.kb ?? null;
    });
    if (id !== null) reached.add(id);
  }
  assert.equal(reached.size, count, `${name}: ${count - reached.size} of ${count} form controls cannot be reached with Tab`);
}

/** axe, the keyboard walk, the CSP, then a screenshot when named. */
async function checkPage(/** @type {import('playwright-core').Page} */ page, /** @type {string} */ name, /** @type {string} */ shot = '') {
  await assertAccessible(page, name);
  await assertKeyboardReachable(page, name);
  assert.deepEqual(problemsOf(page), [], `${name}: CSP or script errors`);
  await page.evaluate(() => { /** @type {HTMLElement} */ (document.activeElement)?.blur(); window.scrollTo(0, 0); });
  if (shot) await page.screenshot({ path: `${SHOTS}${shot}.png`, fullPage: false });
}

/** @param {string} path @param {{method?: string, token?: string, body?: unknown}} [options] */
async function api(path, { method = 'GET', token, body } = {}) {
  const response = await fetch(`${system.baseUrl}${path}`, {
    method,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

describe('the admin console', () => {
  /** @type {import('playwright-core').Page} */
  let ownerPage;

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    system = await startSystem();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    // The platform admin: the first user of the installation.
    const bootstrapped = await api('/api/v1/auth/bootstrap', { method: 'POST', body: { email: admin.email, password: admin.password, full_name: admin.name, tenant_name: admin.tenant } });
    assert.equal(bootstrapped.status, 201);
  });

  after(async () => {
    await browser?.close();
    await system?.stop();
  });

  test('the first page loads under 200 KiB and reports its time to interactive', STEP, async () => {
    // Each load in a fresh context: an empty cache, as a first visit. The time is
    // printed, never asserted (it depends on the machine's load); the bytes are.
    const loads = Number(process.env.CONSOLE_LOADS ?? 5);
    /** @type {{interactiveMs: number, bytes: number, files: number}[]} */
    const figures = [];
    /** @type {import('playwright-core').Page | null} */
    let page = null;
    for (let load = 0; load < loads; load++) {
      page = await newPage();
      const response = await page.goto('/console');
      assert.ok(response);
      assert.match(response.headers()['content-security-policy'] ?? '', /script-src 'self'/);
      await page.waitForFunction(() => document.documentElement.dataset.ready === 'true');
      figures.push(await page.evaluate(() => {
        const navigation = /** @type {PerformanceNavigationTiming} */ (performance.getEntriesByType('navigation')[0]);
        const resources = /** @type {PerformanceResourceTiming[]} */ (performance.getEntriesByType('resource'));
        const interactive = performance.getEntriesByName('console-interactive')[0];
        return {
          interactiveMs: interactive.startTime,
          bytes: navigation.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0),
          files: resources.length + 1,
        };
      }));
    }
    const times = figures.map((f) => f.interactiveMs).sort((x, y) => x - y);
    const median = times[Math.floor(times.length / 2)];
    const bytes = Math.max(...figures.map((f) => f.bytes));
    console.log(`console first load: ${(bytes / 1024).toFixed(1)} KiB transferred in ${figures[0].files} files; ` +
      `interactive after navigation start: median ${median.toFixed(0)} ms, min ${times[0].toFixed(0)} ms, max ${times[times.length - 1].toFixed(0)} ms (${loads} loads)`);
    assert.ok(bytes > 0 && bytes < 200 * 1024, `${bytes} bytes`);
    assert.ok(page);
    await page.getByLabel('Email').waitFor();
    await checkPage(page, 'sign in', 'sign-in');
  });

  test('a new tenant signs up with a plan and verifies the email from the link', STEP, async () => {
    ownerPage = await newPage();
    await open(ownerPage, '/console/sign-up');
    await checkPage(ownerPage, 'sign up', 'sign-up');
    await ownerPage.getByLabel('Your name').fill(owner.name);
    await ownerPage.getByLabel('Email').fill(owner.email);
    await ownerPage.getByLabel('Password').fill(owner.password);
    await ownerPage.getByLabel('Company (tenant) name').fill(owner.tenant);
    await ownerPage.getByRole('radio', { name: /Business/ }).check();
    await ownerPage.getByRole('button', { name: 'Create the account' }).click();
    await ownerPage.getByRole('heading', { name: owner.tenant, level: 1 }).waitFor();
    await ownerPage.getByText('trialing').first().waitFor();
    await ownerPage.getByRole('heading', { name: 'Verify your email' }).waitFor();

    const link = await system.sink.link(owner.email, 'verify-email');
    await ownerPage.goto(link);
    await ownerPage.getByText('Your email address is verified').waitFor();
    assert.ok(!ownerPage.url().includes('token='), 'the token is taken out of the address bar');
    await checkPage(ownerPage, 'verify email');
  });

  test('a reload continues the session, and the access token is kept in no storage', STEP, async () => {
    await open(ownerPage, '/console/dashboard');
    await ownerPage.getByRole('button', { name: 'Sign out' }).waitFor();
    await ownerPage.getByRole('heading', { name: 'Verify your email' }).waitFor({ state: 'detached' });
    const stored = await ownerPage.evaluate(() => ({ session: { ...sessionStorage }, local: { ...localStorage }, cookies: document.cookie }));
    assert.deepEqual(Object.keys(stored.session), ['rowguard.refresh_token']);
    assert.deepEqual(stored.local, {});
    assert.equal(stored.cookies, '');
    await checkPage(ownerPage, 'dashboard', 'dashboard');
  });

  test('the owner creates a store and a product, and adjusts its stock', STEP, async () => {
    await navigate(ownerPage, 'Stores');
    const newStore = ownerPage.getByRole('region', { name: 'New store' });
    await newStore.getByLabel('Name').fill('Nairobi CBD');
    await newStore.getByLabel('Code').fill('NBO-1');
    await newStore.getByLabel('Address').fill('Moi Avenue 12');
    await ownerPage.getByRole('button', { name: 'Create the store' }).click();
    await ownerPage.getByRole('cell', { name: 'Nairobi CBD', exact: true }).waitFor();

    await navigate(ownerPage, 'Products and inventory');
    const newProduct = ownerPage.getByRole('region', { name: 'New product' });
    await newProduct.getByLabel('SKU').fill('UGALI-2KG');
    await newProduct.getByLabel('Name').fill('Maize flour 2 kg');
    await newProduct.getByLabel('Price (KES)').fill('189.50');
    await ownerPage.getByRole('button', { name: 'Add the product' }).click();
    await ownerPage.getByRole('cell', { name: 'Maize flour 2 kg' }).first().waitFor();
    await ownerPage.getByText('KES 189.50').waitFor();

    await ownerPage.getByLabel('Change').fill('12');
    await ownerPage.getByLabel('Reason').fill('delivery from the mill');
    await ownerPage.getByRole('button', { name: 'Adjust' }).click();
    await ownerPage.getByTestId('quantity-UGALI-2KG').filter({ hasText: '12' }).waitFor();
    await checkPage(ownerPage, 'products and inventory', 'products');
  });

  test('a value that looks like markup is shown as text, never parsed', STEP, async () => {
    const name = '<img src=x onerror="document.title=1">Mombasa';
    await navigate(ownerPage, 'Stores');
    await ownerPage.getByRole('region', { name: 'New store' }).getByLabel('Name').fill(name);
    await ownerPage.getByRole('button', { name: 'Create the store' }).click();
    await ownerPage.getByRole('cell', { name, exact: true }).waitFor();
    assert.equal(await ownerPage.locator('main img').count(), 0);
    await checkPage(ownerPage, 'stores', 'stores');
  });

  test('an invited member accepts from the email link and sees only what their role allows', STEP, async () => {
    await navigate(ownerPage, 'Members');
    await ownerPage.getByLabel('Email').fill(staff.email);
    await ownerPage.getByLabel('Role').first().selectOption({ label: 'Staff' });
    await ownerPage.getByLabel('Store').first().selectOption({ label: 'Nairobi CBD' });
    await ownerPage.getByRole('button', { name: 'Send the invitation' }).click();
    await ownerPage.getByRole('cell', { name: staff.email, exact: true }).waitFor();
    await checkPage(ownerPage, 'members', 'members');

    const link = await system.sink.link(staff.email, 'accept-invitation');
    const page = await newPage();
    await page.goto(link);
    await page.getByRole('heading', { name: 'Accept an invitation' }).waitFor();
    await checkPage(page, 'accept invitation');
    await page.getByLabel('Your name (new accounts)').fill(staff.name);
    await page.getByLabel('Password').fill(staff.password);
    await page.getByRole('button', { name: 'Join the team' }).click();
    await page.getByRole('heading', { name: owner.tenant, level: 1 }).waitFor();

    const nav = page.getByRole('navigation', { name: 'Console pages' });
    const links = await nav.getByRole('link').allTextContents();
    assert.ok(links.includes('Products and inventory'), `staff sees products: ${links}`);
    for (const hidden of ['Members', 'Roles', 'Billing', 'API keys', 'Audit log', 'Platform']) {
      assert.ok(!links.includes(hidden), `staff does not see ${hidden}: ${links}`);
    }
    await navigate(page, 'Products and inventory');
    await page.getByTestId('quantity-UGALI-2KG').filter({ hasText: '12' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Add the product' }).count(), 0, 'staff cannot create products');
    await open(page, '/console/members');
    await page.getByText('Your roles in this tenant do not allow this page.').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  });

  test('the owner suspends and reactivates a member, edits a store and assigns people to it', STEP, async () => {
    const session = await api('/api/v1/auth/login', { method: 'POST', body: { email: staff.email, password: staff.password } });
    assert.equal((await api('/api/v1/me', { token: session.body.access_token })).status, 200);
    await navigate(ownerPage, 'Members');
    await ownerPage.getByRole('button', { name: `Suspend ${staff.name}` }).click();
    await ownerPage.getByRole('button', { name: `Reactivate ${staff.name}` }).waitFor();
    const refused = await api('/api/v1/me', { token: session.body.access_token });
    assert.ok(refused.status === 401 || refused.status === 403, `a suspended member's token is refused: ${refused.status}`);
    await ownerPage.getByRole('button', { name: `Reactivate ${staff.name}` }).click();
    await ownerPage.getByRole('button', { name: `Suspend ${staff.name}` }).waitFor();

    await navigate(ownerPage, 'Stores');
    await ownerPage.getByText('Edit Nairobi CBD').click();
    const editor = ownerPage.locator('details', { hasText: 'Edit Nairobi CBD' });
    await editor.getByLabel('Address').fill('Kenyatta Avenue 3');
    await editor.getByRole('button', { name: 'Save' }).click();
    await ownerPage.getByRole('cell', { name: 'Kenyatta Avenue 3', exact: true }).waitFor();
    await ownerPage.getByText('People in Nairobi CBD').click();
    const people = ownerPage.locator('details', { hasText: 'People in Nairobi CBD' });
    await people.getByLabel('Member').selectOption({ label: owner.name });
    await people.getByRole('button', { name: 'Assign' }).click();
    await people.getByRole('button', { name: `Unassign ${owner.name}` }).waitFor();
  });

  test('roles: the permission matrix, system roles locked, a new role created', STEP, async () => {
    await navigate(ownerPage, 'Roles');
    await ownerPage.getByRole('table', { name: 'Permission matrix' }).waitFor();
    assert.ok(await ownerPage.getByRole('checkbox', { name: 'Owner: users.invite' }).isDisabled(), 'system roles are not editable');
    await ownerPage.getByLabel('Name', { exact: true }).fill('Stock clerk');
    await ownerPage.getByRole('checkbox', { name: 'inventory.adjust', exact: true }).check();
    await ownerPage.getByRole('button', { name: 'Create the role' }).click();
    await ownerPage.getByRole('columnheader', { name: 'Stock clerk' }).waitFor();
    await checkPage(ownerPage, 'roles', 'roles');
  });

  test('API keys: the created key is shown once with a copy button, works, and is revoked', STEP, async () => {
    await navigate(ownerPage, 'API keys');
    await ownerPage.getByLabel('Name', { exact: true }).fill('warehouse sync');
    await ownerPage.getByRole('checkbox', { name: 'products.view', exact: true }).check();
    await ownerPage.getByRole('button', { name: 'Create the key' }).click();
    const secret = ownerPage.getByLabel('The key');
    await secret.waitFor();
    const key = await secret.inputValue();
    assert.match(key, /^rgk_/);
    await ownerPage.getByRole('button', { name: 'Copy', exact: true }).click();
    await ownerPage.getByText('Copied.').waitFor();
    assert.equal(await ownerPage.evaluate(() => navigator.clipboard.readText()), key);
    await checkPage(ownerPage, 'api keys', 'api-keys');
    assert.equal((await api('/api/v1/products', { token: key })).status, 200, 'the key works');

    await ownerPage.getByRole('button', { name: 'Done, hide it' }).click();
    assert.equal(await ownerPage.getByLabel('The key').count(), 0, 'the key is not shown again');
    await ownerPage.getByRole('button', { name: 'Revoke warehouse sync' }).click();
    await ownerPage.getByRole('button', { name: 'Revoke warehouse sync' }).waitFor({ state: 'detached' });
    assert.equal((await api('/api/v1/products', { token: key })).status, 401, 'the revoked key is refused');
  });

  test('an invoice is paid by M-Pesa through the fake Daraja and shows paid without a reload', STEP, async () => {
    // Time passes: the trial ends and the first invoice is issued.
    const me = await api('/api/v1/auth/login', { method: 'POST', body: { email: owner.email, password: owner.password } });
    const subscription = await api('/api/v1/subscriptions/current', { token: me.body.access_token });
    const trialEnd = new Date(subscription.body.trial_end);
    await system.runJob('billing.renewals', new Date(trialEnd.getTime() + 60_000).toISOString());

    await navigate(ownerPage, 'Billing');
    const status = ownerPage.getByTestId('invoice-status-INV-000001');
    await status.filter({ hasText: 'open' }).waitFor();
    await checkPage(ownerPage, 'billing', 'billing');
    await ownerPage.getByLabel('M-Pesa phone number').fill('0712 345 678'.replace(/ /g, ''));
    await ownerPage.getByRole('button', { name: 'Pay INV-000001 with M-Pesa' }).click();
    await ownerPage.getByText('Check your phone').waitFor();
    await status.filter({ hasText: 'paid' }).waitFor({ timeout: 30000 });
    await ownerPage.getByText(/Paid\. M-Pesa receipt/).waitFor();
  });

  test('notifications and the audit log are listed', STEP, async () => {
    await navigate(ownerPage, 'Notifications');
    await ownerPage.locator('.notifications li').first().waitFor();
    await checkPage(ownerPage, 'notifications', 'notifications');
    await ownerPage.getByRole('button', { name: 'Mark all as read' }).click();
    await ownerPage.locator('.notifications li.unread').first().waitFor({ state: 'detached' });
    await navigate(ownerPage, 'Audit log');
    await ownerPage.getByRole('table', { name: 'Audit events' }).waitFor();
    await checkPage(ownerPage, 'audit log', 'audit');
  });

  test('a password reset from the email link lets the member sign in with the new password', STEP, async () => {
    const page = await newPage();
    await open(page, '/console/sign-in');
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.getByRole('heading', { name: 'Forgot your password' }).waitFor();
    await checkPage(page, 'forgot password');
    const seen = system.sink.messages.length;
    await page.getByLabel('Email').fill(staff.email);
    await page.getByRole('button', { name: 'Send the link' }).click();
    await page.getByText('is on its way').waitFor();

    const link = await system.sink.link(staff.email, 'reset-password', seen);
    await page.goto(link);
    await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    await checkPage(page, 'reset password');
    staff.password = 'staff-pass-5678';
    await page.getByLabel('New password').fill(staff.password);
    await page.getByRole('button', { name: 'Change the password' }).click();
    await page.getByText('Your password is changed').waitFor();
    await signIn(page, staff);
    await page.getByRole('heading', { name: owner.tenant, level: 1 }).waitFor();
  });

  test('sign-in works with the keyboard alone', STEP, async () => {
    const page = await newPage();
    await open(page, '/console/sign-in');
    await page.evaluate(() => /** @type {HTMLElement} */ (document.activeElement)?.blur());
    for (let i = 0; i < 10 && (await page.evaluate(() => document.activeElement?.getAttribute('name'))) !== 'email'; i++) {
      await page.keyboard.press('Tab');
    }
    await page.keyboard.type(staff.email);
    await page.keyboard.press('Tab');
    await page.keyboard.type(staff.password);
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
  });

  test('the tenant switcher moves between the tenants one belongs to', STEP, async () => {
    // Another company invites the owner; she accepts with her own password.
    const registered = await api('/api/v1/auth/register', { method: 'POST', body: { email: other.email, password: other.password, full_name: other.name, tenant_name: other.tenant } });
    assert.equal(registered.status, 201);
    const token = registered.body.access_token;
    const roles = await api('/api/v1/roles', { token });
    const adminRole = roles.body.items.find((/** @type {{name: string}} */ r) => r.name === 'Admin');
    const seen = system.sink.messages.length;
    assert.equal((await api('/api/v1/invitations', { method: 'POST', token, body: { email: owner.email, role_id: adminRole.id } })).status, 201);
    const link = await system.sink.link(owner.email, 'accept-invitation', seen);
    await ownerPage.goto(link);
    await ownerPage.getByLabel('Password').fill(owner.password);
    await ownerPage.getByRole('button', { name: 'Join the team' }).click();
    await ownerPage.getByRole('heading', { name: other.tenant, level: 1 }).waitFor();

    // As an Admin there she holds everything but tenants.delete: granting it is refused,
    // and the console says why in words.
    await navigate(ownerPage, 'Roles');
    await ownerPage.getByLabel('Name', { exact: true }).fill('Closer');
    await ownerPage.getByRole('checkbox', { name: 'tenants.delete', exact: true }).check();
    await ownerPage.getByRole('button', { name: 'Create the role' }).click();
    await ownerPage.getByText('You cannot grant what you do not hold: you lack tenants.delete.').waitFor();

    const switcher = ownerPage.getByRole('form', { name: 'Tenant switcher' });
    await switcher.getByLabel('Tenant').selectOption({ label: owner.tenant });
    await switcher.getByRole('button', { name: 'Switch' }).click();
    await ownerPage.getByRole('heading', { name: owner.tenant, level: 1 }).waitFor();
    await navigate(ownerPage, 'Your tenants');
    await ownerPage.getByRole('button', { name: `Switch to ${other.tenant}` }).click();
    await ownerPage.getByRole('heading', { name: other.tenant, level: 1 }).waitFor();
    await open(ownerPage, '/console/tenants');
    await checkPage(ownerPage, 'tenants', 'tenants');
  });

  test('a platform admin suspends a tenant and sees the job queue', STEP, async () => {
    const page = await newPage();
    await signIn(page, admin);
    await navigate(page, 'Platform');
    await page.getByRole('cell', { name: other.tenant, exact: true }).waitFor();
    await checkPage(page, 'platform', 'platform');
    await page.getByRole('button', { name: `Suspend ${other.tenant}` }).click();
    await page.getByRole('button', { name: `Reactivate ${other.tenant}` }).waitFor();
    const login = await api('/api/v1/auth/login', { method: 'POST', body: { email: other.email, password: other.password } });
    assert.equal(login.status, 403, 'a suspended tenant cannot sign in');
    await page.getByRole('button', { name: `Reactivate ${other.tenant}` }).click();
    await page.getByRole('button', { name: `Suspend ${other.tenant}` }).waitFor();
  });

  test('sign-out revokes the refresh token', STEP, async () => {
    const page = await newPage();
    await signIn(page, staff);
    const refresh = await page.evaluate(() => sessionStorage.getItem('rowguard.refresh_token'));
    assert.ok(refresh);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('rowguard.refresh_token')), null);
    assert.equal((await api('/api/v1/auth/refresh', { method: 'POST', body: { refresh_token: refresh } })).status, 401);
  });

  test('no page tripped the Content-Security-Policy or threw', STEP, () => {
    assert.ok(opened.length > 5);
    for (const { problems } of opened) assert.deepEqual(problems, []);
  });
});
