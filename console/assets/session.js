// Where the console keeps its credentials. The access token lives only in this
// module's memory: a script of another origin cannot read it, and it dies with the
// page. The refresh token is kept in sessionStorage, which is per origin and per tab,
// so a reload continues the session (one refresh) while another site, another tab or
// a restarted browser gets nothing. Signing out revokes it at the server.

const REFRESH_KEY = 'rowguard.refresh_token';

/** @type {string | null} */
let accessToken = null;

/** @param {{access_token: string, refresh_token: string}} pair */
export function keep(pair) {
  accessToken = pair.access_token;
  sessionStorage.setItem(REFRESH_KEY, pair.refresh_token);
}

export function access() {
  return accessToken;
}

export function refreshToken() {
  return sessionStorage.getItem(REFRESH_KEY);
}

/** Forgets both tokens (after the server revoked the refresh token, or refused it). */
export function forget() {
  accessToken = null;
  sessionStorage.removeItem(REFRESH_KEY);
}
