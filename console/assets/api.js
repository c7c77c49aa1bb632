// The console's only way to the server: the public /api/v1, same origin, typed by the
// OpenAPI document. `rowguard-api` is the openapi-typescript output that
// tests/console/run.sh generates from `rowguard openapi`; tsc --checkJs checks every
// call below against it, so a renamed path or field fails CI. The types are comments:
// the browser loads this file as written.

import * as session from './session.js';

/** @typedef {import('rowguard-api').paths} Paths */
/** @typedef {import('rowguard-api').components['schemas']} Schemas */
/** @typedef {'get' | 'post' | 'put' | 'patch' | 'delete'} Method */

/**
 * The JSON body of a response object, `undefined` for one without content.
 * @template R
 * @typedef {R extends {content: {[type: string]: infer T}} ? T : undefined} JsonOf
 */
/**
 * What an operation answers on success.
 * @template O
 * @typedef {O extends {responses: infer R} ? JsonOf<R[keyof R & (200 | 201 | 202 | 204)]> : never} Success
 */
/**
 * The request body an operation takes.
 * @template O
 * @typedef {O extends {requestBody: {content: {[type: string]: infer B}}} ? B
 *   : O extends {requestBody?: {content: {[type: string]: infer B}}} ? B : never} BodyOf
 */
/**
 * @template O
 * @typedef {O extends {parameters: {path: infer P}} ? P : never} PathOf
 */
/**
 * @template O
 * @typedef {O extends {parameters: {query?: infer Q}} ? Q : never} QueryOf
 */
/**
 * @template O
 * @typedef {{
 *   path?: PathOf<O>,
 *   query?: QueryOf<O>,
 *   body?: BodyOf<O>,
 *   store?: string | null,
 *   idempotencyKey?: string,
 *   anonymous?: boolean,
 * }} CallOptions
 */

/** An answer that is not a success, with its problem+json body. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {{detail?: string, code?: string, errors?: {field: string, message: string}[]}} problem
   */
  constructor(status, problem) {
    super(problem.detail ?? `The server answered ${status}.`);
    this.status = status;
    this.problem = problem;
    this.code = problem.code;
  }
}

/** Listeners told when the session ends on its own (the refresh token was refused). */
/** @type {Set<() => void>} */
export const sessionEnded = new Set();

/** @type {Promise<boolean> | null} */
let refreshing = null;

/**
 * Trades the kept refresh token for a new pair, once however many calls ask at the
 * same moment (a refresh token used twice revokes its whole family).
 * @returns {Promise<boolean>} whether there is a session now
 */
export function refresh() {
  refreshing ??= (async () => {
    const token = session.refreshToken();
    if (!token) return false;
    try {
      const pair = await call('post', '/api/v1/auth/refresh', { body: { refresh_token: token }, anonymous: true });
      session.keep(pair);
      return true;
    } catch {
      session.forget();
      for (const listener of sessionEnded) listener();
      return false;
    }
  })().finally(() => { refreshing = null; });
  return refreshing;
}

/**
 * @param {string} template e.g. `/api/v1/stores/{id}`
 * @param {{[name: string]: unknown} | undefined} values
 */
function expand(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(String(values?.[name] ?? '')));
}

/** @param {{[name: string]: unknown} | undefined} query */
function search(query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

/**
 * Calls an operation of the OpenAPI document by its method and path template. An
 * expired access token is refreshed once and the call repeated.
 * @template {keyof Paths} P
 * @template {Method & keyof Paths[P]} M
 * @param {M} method
 * @param {P} path
 * @param {CallOptions<Paths[P][M]>} [options]
 * @returns {Promise<Success<Paths[P][M]>>}
 */
export async function call(method, path, options = {}) {
  const url = expand(path, /** @type {any} */ (options.path)) + search(/** @type {any} */ (options.query));
  const send = () => {
    /** @type {{[name: string]: string}} */
    const headers = { Accept: 'application/json' };
    const token = session.access();
    if (token && !options.anonymous) headers.Authorization = `Bearer ${token}`;
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    if (options.store) headers['X-Store-ID'] = options.store;
    if (options.idempotencyKey) headers['Idempotency-Key'] = options.idempotencyKey;
    return fetch(url, {
      method: method.toUpperCase(),
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: 'omit',
      cache: 'no-store',
    });
  };
  let response = await send();
  if (response.status === 401 && !options.anonymous && session.refreshToken() && (await refresh())) {
    response = await send();
  }
  if (!response.ok) {
    /** @type {any} */
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      problem = { detail: `The server answered ${response.status}.` };
    }
    throw new ApiError(response.status, problem);
  }
  // 202 and 204 may come without a body.
  const text = await response.text();
  return text ? JSON.parse(text) : /** @type {any} */ (undefined);
}
