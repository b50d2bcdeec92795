/**
 * A real POP3 server and its admin listener on 127.0.0.1, port 0 (R-X21), sharing one passwd-file
 * directory, policy file and memory store, as `poplar serve` wires them (cli/serve-admin.ts):
 * what the API changes, POP3 sees. `http` speaks to the admin listener with the test's token.
 */
import { Writable } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAdminServer, type AdminServer } from '../../src/admin/api-server.js';
import type { AdminContext } from '../../src/admin/context.js';
import { CounterHistory } from '../../src/admin/history.js';
import { inProcessActivity, inProcessFailures, inProcessSessions } from '../../src/admin/sources.js';
import { AdminTokens } from '../../src/admin/tokens.js';
import type { AdminDirectory } from '../../src/auth/directory.js';
import { makeCredentials } from '../../src/auth/credentials.js';
import { PasswdFile } from '../../src/auth/passwd-file.js';
import { createLogger } from '../../src/observability/logger.js';
import { UserPolicies } from '../../src/policy/user-policy.js';
import { startServer, type PoplarServer } from '../../src/server.js';
import { MemoryMailStore } from '../../src/storage/memory/memory-store.js';
import { DEFAULT_TEST_SETTINGS, TEST_SCRYPT_COST } from '../helpers/test-server.js';

export const DEFAULTS = { quotaBytes: 0, quotaMessages: 0, retrievedDays: 0, unretrievedDays: 0, loginDelay: 0, downloadBytesPerDay: 0 };
const NEEDS = { scram: true, nt: true, cram: true, secret: false };

export interface AdminHarness {
  readonly pop3Port: number;
  readonly url: string;
  readonly token: string;
  readonly tokens: AdminTokens;
  readonly dir: string;
  readonly directory: PasswdFile;
  readonly policies: UserPolicies;
  readonly store: MemoryMailStore;
  readonly server: PoplarServer;
  readonly admin: AdminServer;
  logText(): string;
  /** A request with the harness token (or `auth`: a header value, or null for none). */
  http(method: string, path: string, body?: unknown, auth?: string | null): Promise<{ status: number; headers: Headers; json: any }>;
  close(): Promise<void>;
}

export async function startAdminHarness(opts: {
  users?: Record<string, string>;
  /** Failed-login and failed-token delay base, ms (default 0: no waiting). */
  delayMs?: number;
  /** Serve this directory through the API instead of the passwd file (a read-only one). */
  apiDirectory?: AdminDirectory;
} = {}): Promise<AdminHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-admin-'));
  const directory = new PasswdFile(join(dir, 'users'), { statIntervalMs: 0 });
  const hashPassword = (pw: string) => makeCredentials(pw, { cost: TEST_SCRYPT_COST, needs: NEEDS });
  for (const [name, pw] of Object.entries(opts.users ?? { alice: 'wonderland' })) {
    const made = await hashPassword(pw);
    await directory.add(name, made.password, made.credentials);
  }
  const policies = new UserPolicies(join(dir, 'user-policy.toml'), DEFAULTS);
  const store = new MemoryMailStore();
  let text = '';
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { text += chunk.toString(); cb(); } });
  const logger = createLogger('debug', sink);
  const delay = { baseMs: opts.delayMs ?? 0, maxMs: (opts.delayMs ?? 0) * 8, windowMs: 60_000 };
  const server = await startServer({
    listen: [{ host: '127.0.0.1', port: 0 }], settings: DEFAULT_TEST_SETTINGS, directory, store, logger,
    scryptCost: TEST_SCRYPT_COST, failureDelay: delay, policy: policies,
  });
  const tokens = new AdminTokens(join(dir, 'admin-tokens'));
  const { token } = await tokens.create();
  const history = new CounterHistory();
  const context: AdminContext = {
    sessions: inProcessSessions(server), failures: inProcessFailures(server.throttle), activity: inProcessActivity(history),
    directory: opts.apiDirectory ?? directory, policies, store, hashPassword, logger,
  };
  const admin = await startAdminServer({ host: '127.0.0.1', port: 0, tokens, failureDelay: delay, context });
  const url = `http://127.0.0.1:${admin.address().port}`;
  return {
    pop3Port: server.addresses()[0]!.port, url, token, tokens, dir, directory, policies, store, server, admin,
    logText: () => text,
    async http(method, path, body, auth) {
      const headers: Record<string, string> = {};
      const a = auth === undefined ? `Bearer ${token}` : auth;
      if (a !== null) headers['authorization'] = a;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${url}${path}`, { method, headers, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
      const raw = await res.text();
      let json: unknown;
      try {
        json = raw === '' ? undefined : JSON.parse(raw);
      } catch {
        json = raw;
      }
      return { status: res.status, headers: res.headers, json };
    },
    async close() {
      history.close();
      await admin.close();
      await server.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
