// What the browser tests run against, all real and all on 127.0.0.1: a fresh
// database on the PostgreSQL server, an SMTP sink that keeps every message the
// server's email job delivers, the fake Daraja (examples/fake_daraja.rs, which pays
// every STK push a moment later by calling the server's callback), and the built
// `rowguard` binary serving with job workers, as `cargo run` would.

import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';

const ROOT = new URL('../../', import.meta.url).pathname;
export const BIN = process.env.ROWGUARD_BIN ?? `${ROOT}target/debug/rowguard`;
const FAKE_DARAJA = process.env.FAKE_DARAJA_BIN ?? `${ROOT}target/debug/examples/fake_daraja`;
/** The server's admin URL: a database per run is created there and dropped after. */
const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres';

/** A port free right now on 127.0.0.1. */
export async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * @param {number} ms
 */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every message the server sends, parsed. */
export class SmtpSink {
  /** @type {{to: string, subject: string, text: string}[]} */
  messages = [];

  async start() {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData: (stream, session, callback) => {
        simpleParser(stream).then((mail) => {
          const to = session.envelope.rcptTo.map((r) => r.address.toLowerCase());
          for (const address of to) {
            this.messages.push({ to: address, subject: mail.subject ?? '', text: mail.text ?? '' });
          }
          callback();
        }, callback);
      },
    });
    this.port = await freePort();
    this.server.listen(this.port, '127.0.0.1');
    await once(this.server.server, 'listening');
    return this;
  }

  /**
   * The first link to `/console/<page>` in a message to `to` whose subject matches,
   * waiting for the email job to deliver it.
   * @param {string} to
   * @param {string} page e.g. `verify-email`
   * @param {number} [after] only messages after this many were already seen
   */
  async link(to, page, after = 0) {
    const pattern = new RegExp(`https?://[^\\s"'<>]+/console/${page}\\?token=[^\\s"'<>]+`);
    for (let tries = 0; tries < 300; tries++) {
      const found = this.messages.slice(after).find((m) => m.to === to.toLowerCase() && pattern.test(m.text));
      if (found) return /** @type {RegExpMatchArray} */ (found.text.match(pattern))[0];
      await sleep(100);
    }
    throw new Error(`no email to ${to} with a /console/${page} link; got: ${this.messages.map((m) => `${m.to}: ${m.subject}`).join('; ')}`);
  }

  stop() {
    return new Promise((resolve) => this.server?.close(() => resolve(undefined)));
  }
}

/**
 * @param {import('node:child_process').ChildProcess} child
 * @param {RegExp} pattern
 */
function waitForLine(child, pattern) {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (/** @type {Buffer} */ chunk) => {
      seen += chunk.toString();
      const match = seen.match(pattern);
      if (match) {
        child.stdout?.off('data', onData);
        resolve(match);
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited (${code}) before printing ${pattern}: ${seen}`)));
  });
}

/** The fake Daraja, paying each push `delaySeconds` later. */
export async function startFakeDaraja(delaySeconds = 2) {
  const port = await freePort();
  const child = spawn(FAKE_DARAJA, [`127.0.0.1:${port}`, String(delaySeconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const match = /** @type {RegExpMatchArray} */ (await waitForLine(child, /(ROWGUARD_MPESA_BASE_URL=\S+.*ROWGUARD_MPESA_CALLBACK_ALLOW=\S+)/));
  /** @type {{[name: string]: string}} */
  const env = {};
  for (const pair of match[1].trim().split(/\s+/)) {
    const [name, ...value] = pair.split('=');
    env[name] = value.join('=');
  }
  return { child, env };
}

/** @param {string} sql */
function psql(sql) {
  execFileSync('psql', [ADMIN_URL, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { stdio: ['ignore', 'pipe', 'inherit'] });
}

/** The whole system under test. */
export async function startSystem() {
  const database = `console_e2e_${process.pid}_${Date.now()}`;
  psql(`CREATE DATABASE ${database}`);
  const databaseUrl = ADMIN_URL.replace(/\/[^/?]*(\?|$)/, `/${database}$1`);
  const sink = await new SmtpSink().start();
  const daraja = await startFakeDaraja(2);
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    ...daraja.env,
    DATABASE_URL: databaseUrl,
    ROWGUARD_BIND: `127.0.0.1:${port}`,
    ROWGUARD_PUBLIC_URL: baseUrl,
    ROWGUARD_SMTP_URL: `smtp://127.0.0.1:${sink.port}`,
    ROWGUARD_WORKERS: '1',
    ROWGUARD_JWT_SECRET: 'console-e2e-secret-console-e2e-secret-0123456789',
    RUST_LOG: process.env.RUST_LOG ?? 'warn',
  };
  const server = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  let healthy = false;
  for (let tries = 0; tries < 300 && server.exitCode === null; tries++) {
    try {
      const response = await fetch(`${baseUrl}/health/db`);
      if (response.ok) { healthy = true; break; }
    } catch { /* not listening yet */ }
    await sleep(100);
  }
  if (!healthy) throw new Error('rowguard did not become healthy');
  return {
    baseUrl,
    sink,
    env,
    /**
     * `rowguard jobs run <kind> --at <at>` against the same database. Asynchronous:
     * the emails it sends go to the sink, which runs in this process.
     */
    async runJob(/** @type {string} */ kind, /** @type {string} */ at) {
      const child = spawn(BIN, ['jobs', 'run', kind, '--at', at], { env, stdio: ['ignore', 'inherit', 'inherit'] });
      const [code] = await once(child, 'exit');
      if (code !== 0) throw new Error(`rowguard jobs run ${kind} exited ${code}`);
    },
    async stop() {
      server.kill('SIGTERM');
      if (server.exitCode === null) await once(server, 'exit');
      daraja.child.kill('SIGINT');
      await sink.stop();
      psql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    },
  };
}
