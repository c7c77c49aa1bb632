// The pages before sign-in, and those the emails link to: sign in, sign up with a
// plan, forgot and reset password, accept an invitation, verify an email.

import { h, append, field, form, showDone, money } from '../dom.js';
import { call } from '../api.js';

/** @typedef {import('../main.js').Context} Context */

const PASSWORD_HINT = 'At least 8 characters.';

/**
 * The token an email link carries, taken out of the address bar once read so that it
 * stays out of the history and of screenshots (the page keeps it in memory).
 * @param {Context} context
 */
function linkToken(context) {
  const token = context.params.get('token');
  if (token) history.replaceState(null, '', location.pathname);
  return token;
}

/** @param {string} title @param {string} [lead] */
function heading(title, lead) {
  return [h('h1', {}, title), lead ? h('p', { class: 'lead' }, lead) : null];
}

/** @param {HTMLElement} main @param {Context} context */
export function signIn(main, context) {
  const next = context.params.get('next');
  const page = next && /^[a-z-]+$/.test(next) ? next : 'dashboard';
  append(main, [
    h('section', { class: 'card narrow' },
      heading('Sign in'),
      form({
        label: 'Sign in',
        action: async (values) => {
          const pair = await call('post', '/api/v1/auth/login', {
            body: { email: values.email, password: values.password },
            anonymous: true,
          });
          await context.signedIn(pair, page);
        },
      },
      field('Email', 'email', { type: 'email', required: true, autocomplete: 'username' }),
      field('Password', 'password', { type: 'password', required: true, autocomplete: 'current-password' })),
      h('p', {}, h('a', { href: '/console/forgot-password' }, 'Forgot your password?')),
      h('p', {}, 'New here? ', h('a', { href: '/console/sign-up' }, 'Create an account'))),
  ]);
}

/** @param {HTMLElement} main @param {Context} context */
export async function signUp(main, context) {
  const plans = await call('get', '/api/v1/plans', { anonymous: true });
  const choices = h('fieldset', { class: 'plans' },
    h('legend', {}, 'Plan'),
    plans.items.map((plan, index) => {
      const id = `plan-${plan.code}`;
      const limits = [
        plan.limits.stores === null ? 'unlimited stores' : `${plan.limits.stores} store(s)`,
        plan.limits.members === null ? 'unlimited members' : `${plan.limits.members} members`,
        plan.limits.products === null ? 'unlimited products' : `${plan.limits.products} products`,
      ];
      const features = Object.entries(plan.features).filter(([, on]) => on).map(([name]) => name.replace('_', ' '));
      return h('div', { class: 'plan' },
        h('input', { type: 'radio', name: 'plan_code', value: plan.code, id, checked: index === 0, required: true }),
        h('label', { for: id },
          h('strong', {}, plan.name),
          ` — ${plan.price_minor === 0 ? 'free' : `${money(plan.price_minor, plan.currency)} a ${plan.interval}`}`,
          plan.trial_days > 0 ? `, ${plan.trial_days}-day trial` : '',
          h('span', { class: 'muted block' }, [...limits, ...features].join(' · '))));
    }));
  append(main, [
    h('section', { class: 'card narrow' },
      heading('Create an account', 'Your company gets its own tenant; you are its Owner.'),
      form({
        label: 'Create the account',
        action: async (values) => {
          const created = await call('post', '/api/v1/onboarding/register', {
            body: {
              email: values.email,
              password: values.password,
              full_name: values.full_name,
              tenant_name: values.tenant_name,
              plan_code: values.plan_code,
            },
            anonymous: true,
          });
          if (created) {
            await context.signedIn(created, 'dashboard');
          } else {
            // A deployment that conceals taken emails answers 202 with no session.
            context.go('sign-in');
          }
        },
      },
      field('Your name', 'full_name', { required: true, autocomplete: 'name' }),
      field('Email', 'email', { type: 'email', required: true, autocomplete: 'email' }),
      field('Password', 'password', { type: 'password', required: true, minlength: 8, autocomplete: 'new-password' }, PASSWORD_HINT),
      field('Company (tenant) name', 'tenant_name', { required: true, autocomplete: 'organization' }),
      choices),
      h('p', {}, 'Already have an account? ', h('a', { href: '/console/sign-in' }, 'Sign in'))),
  ]);
}

/** @param {HTMLElement} main */
export function forgotPassword(main) {
  const done = h('div', { class: 'form-status', role: 'status' });
  append(main, [
    h('section', { class: 'card narrow' },
      heading('Forgot your password', 'We email a link to choose a new one.'),
      form({
        label: 'Send the link',
        action: async (values, element) => {
          await call('post', '/api/v1/auth/forgot-password', { body: { email: values.email }, anonymous: true });
          element.reset();
          showDone(done, 'If an account has that email, a link to reset its password is on its way.');
        },
      }, field('Email', 'email', { type: 'email', required: true, autocomplete: 'email' })),
      done,
      h('p', {}, h('a', { href: '/console/sign-in' }, 'Back to sign in'))),
  ]);
}

/** @param {HTMLElement} main @param {Context} context */
export function resetPassword(main, context) {
  const token = linkToken(context);
  const done = h('div', { class: 'form-status', role: 'status' });
  const section = h('section', { class: 'card narrow' }, heading('Choose a new password'));
  append(main, [section]);
  if (!token) {
    append(section, [h('p', { class: 'form-status error' }, 'This link has no token: open the link of the email again.')]);
    return;
  }
  const resetForm = form({
    label: 'Change the password',
    action: async (values) => {
      await call('post', '/api/v1/auth/reset-password', { body: { token, new_password: values.new_password }, anonymous: true });
      resetForm.remove();
      showDone(done, 'Your password is changed, and every other session of yours is signed out.');
      append(done, [h('p', {}, h('a', { href: '/console/sign-in' }, 'Sign in with the new password'))]);
    },
  }, field('New password', 'new_password', { type: 'password', required: true, minlength: 8, autocomplete: 'new-password' }, PASSWORD_HINT));
  append(section, [resetForm, done]);
}

/** @param {HTMLElement} main @param {Context} context */
export function acceptInvitation(main, context) {
  const token = linkToken(context);
  const section = h('section', { class: 'card narrow' },
    heading('Accept an invitation',
      'New to rowguard? Give your name and choose a password. Already have an account? Give its password.'));
  append(main, [section]);
  if (!token) {
    append(section, [h('p', { class: 'form-status error' }, 'This link has no token: open the link of the email again.')]);
    return;
  }
  append(section, [form({
    label: 'Join the team',
    action: async (values) => {
      const pair = await call('post', '/api/v1/auth/accept-invitation', {
        body: { token, password: values.password, full_name: values.full_name || undefined },
        anonymous: true,
      });
      await context.signedIn(pair, 'dashboard');
    },
  },
  field('Your name (new accounts)', 'full_name', { autocomplete: 'name' }),
  field('Password', 'password', { type: 'password', required: true, autocomplete: 'new-password' }, PASSWORD_HINT))]);
}

/** @param {HTMLElement} main @param {Context} context */
export async function verifyEmail(main, context) {
  const token = linkToken(context);
  const status = h('div', { class: 'form-status', role: 'status' });
  append(main, [h('section', { class: 'card narrow' }, heading('Verify your email'), status,
    h('p', {}, h('a', { href: '/console/dashboard' }, 'Go to the console')))]);
  if (!token) {
    status.className = 'form-status error';
    status.textContent = 'This link has no token: open the link of the email again.';
    return;
  }
  try {
    await call('post', '/api/v1/auth/verify-email', { body: { token }, anonymous: true });
    showDone(status, 'Your email address is verified. Thank you.');
    if (context.me) await context.reload();
  } catch (error) {
    status.className = 'form-status error';
    status.textContent = error instanceof Error ? error.message : 'The link could not be used.';
  }
}
