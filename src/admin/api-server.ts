/**
 * The admin listener (R-X21): the JSON API under `/api/v1` (bearer tokens, one OpenAPI document at
 * `/api/v1/openapi.json`) and the web console at `/`, on fastify with @fastify/swagger (the
 * document is made from the routes' JSON schemas) and @fastify/static (the console's bundled
 * assets, built by scripts/build-console.mjs into `console/` beside this module).
 *
 * Security: a token is checked against hashes only (tokens.ts); a wrong token waits the failed-
 * login delay of its address (a LoginThrottle of its own) before its 401; nothing sets a cookie,
 * so no request is authorised by the browser alone (no CSRF); every answer carries a strict
 * Content-Security-Policy (no inline script or style), nosniff and frame-ancestors 'none'; fastify's
 * request logging is off and the token is never logged. A non-loopback address needs TLS.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { BlockList, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import swagger from '@fastify/swagger';
import { Ajv } from 'ajv';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { DirectoryError } from '../auth/directory.js';
import { DirectoryUnavailableError, UnavailableError } from '../errors.js';
import { LoginThrottle, type ThrottleOptions } from '../auth/throttle.js';
import { AdminFileError } from '../storage/admin-file.js';
import { ApiError, type ErrorCode } from './api-common.js';
import type { AdminContext } from './context.js';
import { sessionRoutes } from './routes-sessions.js';
import { userRoutes } from './routes-users.js';
import type { AdminTokens } from './tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The id of the admin token that authorised this request. */
    tokenId: string;
  }
}

/** Where scripts/build-console.mjs puts the console: beside this module in dist/ and lib/. */
export const CONSOLE_DIR = fileURLToPath(new URL('./console/', import.meta.url));

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return LOOPBACK.check(host, 'ipv4');
  return host.includes(':') && LOOPBACK.check(host, 'ipv6');
}

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  /** PEM files for HTTPS; required unless `host` is loopback. */
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly tokens: AdminTokens;
  /** The delay a wrong token waits, as for failed logins (R-X9). */
  readonly failureDelay: Pick<ThrottleOptions, 'baseMs' | 'maxMs' | 'windowMs'>;
  readonly context: AdminContext;
  /** Package version for the OpenAPI document. */
  readonly version?: string;
}

export interface AdminServer {
  address(): AddressInfo;
  readonly secure: boolean;
  close(): Promise<void>;
}

export class AdminListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdminListenError';
  }
}

/** The fastify app with every route, not listening (docs generation and the listener share it). */
export async function buildAdminApp(opts: Omit<AdminServerOptions, 'host' | 'port'>, https?: { cert: Buffer; key: Buffer }): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024, ...(https === undefined ? {} : { https }) }) as unknown as FastifyInstance;
  // Query strings and paths are text, so `limit=2` is coerced to a number; a JSON body is taken as
  // sent (`{"quota_bytes": true}` is a 400, not 1). Unknown fields are refused, never dropped.
  const ajv = (coerceTypes: boolean | 'array') => new Ajv({ coerceTypes, useDefaults: true, removeAdditional: false, allErrors: false, allowUnionTypes: true });
  const [bodies, text] = [ajv(false), ajv('array')];
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodies : text).compile(schema));
  const throttle = new LoginThrottle(opts.failureDelay);
  const ctx = opts.context;

  app.decorateRequest('tokenId', '');
  app.addHook('onRequest', async (req, reply) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) void reply.header(k, v);
    if (https !== undefined) void reply.header('strict-transport-security', 'max-age=31536000');
    const path = req.url.split('?')[0]!;
    if (!path.startsWith('/api/')) return;
    void reply.header('cache-control', 'no-store');
    if (path === '/api/v1/openapi.json') return;
    const m = /^Bearer ([\x21-\x7e]{1,512})$/i.exec(req.headers.authorization ?? '');
    if (m === null) {
      void reply.header('www-authenticate', 'Bearer');
      throw new ApiError(401, 'TOKEN_MISSING', 'send an admin token: Authorization: Bearer <token> (make one with "poplar admin token")');
    }
    const id = await opts.tokens.verify(m[1]!);
    if (id === undefined) {
      const delayMs = await throttle.failure(req.ip, undefined, undefined);
      ctx.logger.warn({ event: 'admin_auth_failed', ip: req.ip, delayMs }, 'admin API: wrong token');
      if (delayMs > 0) await sleep(delayMs);
      void reply.header('www-authenticate', 'Bearer error="invalid_token"');
      throw new ApiError(401, 'TOKEN_INVALID', 'this admin token is not known (revoked, or mistyped)');
    }
    req.tokenId = id;
  });

  app.setErrorHandler((err: FastifyError | ApiError | Error, _req, reply) => {
    const send = (status: number, code: ErrorCode, message: string) => reply.code(status).send({ error: { code, message } });
    if (err instanceof ApiError) return send(err.status, err.code, err.message);
    if (err instanceof DirectoryError) {
      const map = { INVALID_NAME: [400, 'INVALID_NAME'], EXISTS: [409, 'EXISTS'], NO_SUCH_USER: [404, 'NOT_FOUND'], ALREADY_GRANTED: [409, 'ALREADY_GRANTED'], NOT_GRANTED: [404, 'NOT_GRANTED'], FILE: [500, 'INTERNAL'], UNAVAILABLE: [503, 'UNAVAILABLE'] } as const;
      const [status, code] = map[err.code];
      return send(status, code, err.message);
    }
    if (err instanceof AdminFileError) return send(503, 'BUSY', err.message);
    if (err instanceof UnavailableError || err instanceof DirectoryUnavailableError) return send(503, 'UNAVAILABLE', err.message);
    const fe = err as FastifyError;
    if (fe.validation !== undefined) return send(400, 'VALIDATION', `${fe.validationContext ?? 'request'}${fe.message.replace(/^(body|querystring|params)/, '')}`);
    if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) return send(fe.statusCode, 'VALIDATION', fe.message);
    ctx.logger.error({ event: 'admin_error', err }, 'admin API error');
    return send(500, 'INTERNAL', 'internal error (see the server log)');
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` } }));

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'poplar admin API',
        version: opts.version ?? '1',
        description: 'See and steer a running poplar POP3 server. Every route but this document needs `Authorization: Bearer <token>` ' +
          '(`poplar admin token`). Errors are `{ "error": { "code", "message" } }` with a stable code. Lists take `limit` and `cursor` ' +
          'and answer `next` (null on the last page). With `server.workers` > 1 the primary process answers and asks every ' +
          'worker: a session\'s `worker` names the one holding it; when a worker does not answer within 2 s, sessions, failed ' +
          'logins, deliveries and history answer without its part and with `partial: true`, and 503 `UNAVAILABLE` when no worker ' +
          'answers or the worker holding a session to end does not.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  sessionRoutes(app, ctx);
  userRoutes(app, ctx);
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  if (existsSync(CONSOLE_DIR)) {
    await app.register(fastifyStatic, { root: CONSOLE_DIR, prefix: '/', index: 'index.html', cacheControl: true, maxAge: 0 });
  } else {
    app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.code(503).type('text/plain').send('console assets not built (npm run build)\n'));
  }
  await app.ready();
  return app;
}

/** Starts the admin listener; refuses a non-loopback address without TLS. */
export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  if (opts.tls === undefined && !isLoopback(opts.host)) {
    throw new AdminListenError(`admin.listen ${opts.host}:${opts.port} is not a loopback address: set admin.tls_cert and admin.tls_key (HTTPS), or listen on 127.0.0.1`);
  }
  const https = opts.tls === undefined ? undefined : { cert: await readFile(opts.tls.cert), key: await readFile(opts.tls.key) };
  const app = await buildAdminApp(opts, https);
  await app.listen({ host: opts.host, port: opts.port });
  const address = app.server.address() as AddressInfo;
  return {
    address: () => address,
    secure: https !== undefined,
    close: async () => {
      app.server.closeAllConnections();
      await app.close();
    },
  };
}
