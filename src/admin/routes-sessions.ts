/**
 * Admin API routes about what happens now (R-X21): live sessions and ending one, recent failed
 * logins with the current penalty per address and user, delivery counts, and the per-minute
 * history behind the console's charts. With workers (across-workers.ts) an answer that lacks a
 * worker that did not answer in time carries `partial: true`; when none answered, 503 UNAVAILABLE.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError, errors, pageOf, pageQuery, paginate, partialProperty, type PageQuery } from './api-common.js';
import type { AdminContext } from './context.js';
import { HISTORY_MINUTES } from './history.js';
import { isPartial } from './sources.js';

/** `answer` with `partial: true` when `from` lacks a worker's part (across-workers.ts). */
const withPartial = <T extends object>(answer: T, from: object): T => (isPartial(from) ? { ...answer, partial: true } : answer);

const sessionSchema = {
  type: 'object',
  required: ['id', 'user', 'mailbox', 'address', 'since', 'state', 'bytesSent', 'tls'],
  properties: {
    id: { type: 'string' },
    user: { type: ['string', 'null'] },
    mailbox: { type: ['string', 'null'] },
    address: { type: 'string' },
    since: { type: 'string', format: 'date-time' },
    state: { type: 'string', enum: ['authorization', 'transaction', 'update'] },
    bytesSent: { type: 'integer' },
    tls: { type: 'boolean' },
    worker: { type: 'integer', description: 'the worker process holding it (absent with one process)' },
  },
} as const;

const failureSchema = {
  type: 'object',
  required: ['at', 'address', 'user'],
  properties: { at: { type: 'string', format: 'date-time' }, address: { type: 'string' }, user: { type: ['string', 'null'] } },
} as const;

const offenderSchema = {
  type: 'object',
  required: ['key', 'recentFailures', 'last', 'failures', 'penaltyMs'],
  properties: {
    key: { type: 'string', description: 'the address or user name' },
    recentFailures: { type: 'integer', description: 'failures of this key among the recent ones kept' },
    last: { type: 'string', format: 'date-time' },
    failures: { type: 'integer', description: 'failures counted for the delay now (0: forgotten)' },
    penaltyMs: { type: 'integer', description: 'the delay its next failed login gets, ms' },
  },
} as const;

export function sessionRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get<{ Querystring: PageQuery }>('/api/v1/sessions', {
    schema: {
      tags: ['sessions'], summary: 'Live POP3 sessions', querystring: pageQuery,
      response: { 200: pageOf(sessionSchema, 'sessions ordered by id', partialProperty), ...errors(400, 503) },
    },
  }, async (req) => {
    const all = await ctx.sessions.list();
    return withPartial(paginate(all, (s) => s.id, req.query), all);
  });

  app.delete<{ Params: { id: string } }>('/api/v1/sessions/:id', {
    schema: {
      tags: ['sessions'], summary: 'End a session (its connection is dropped; no UPDATE, nothing is deleted)',
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 128 } } },
      response: { 204: { type: 'null', description: 'ended' }, ...errors(404, 503) },
    },
  }, async (req, reply) => {
    if (!(await ctx.sessions.end(req.params.id))) throw new ApiError(404, 'NOT_FOUND', `no live session ${req.params.id}`);
    ctx.logger.info({ event: 'admin_session_end', session: req.params.id, tokenId: req.tokenId }, 'session ended by admin');
    return reply.code(204).send();
  });

  app.get<{ Querystring: PageQuery }>('/api/v1/failed-logins', {
    schema: {
      tags: ['failed logins'], summary: 'Recent failed logins, newest first', querystring: pageQuery,
      response: { 200: pageOf(failureSchema, 'failed logins, newest first', partialProperty), ...errors(400, 503) },
    },
  }, async (req) => {
    const all = await ctx.failures.recent();
    const recent = all.map((f, i) => ({ f, key: String(i).padStart(8, '0') }));
    const page = paginate(recent, (r) => r.key, req.query);
    return withPartial({ items: page.items.map(({ f }) => ({ at: new Date(f.at).toISOString(), address: f.address, user: f.user ?? null })), next: page.next }, all);
  });

  for (const kind of ['address', 'user'] as const) {
    app.get<{ Querystring: PageQuery }>(`/api/v1/failed-logins/by-${kind}`, {
      schema: {
        tags: ['failed logins'], summary: `Recent failed logins grouped by ${kind}, with the current penalty`, querystring: pageQuery,
        response: { 200: pageOf(offenderSchema, `one item per ${kind}, ordered by ${kind}`, partialProperty), ...errors(400, 503) },
      },
    }, async (req) => {
      const groups = new Map<string, { recentFailures: number; last: number }>();
      const all = await ctx.failures.recent();
      for (const f of all) {
        const key = kind === 'address' ? f.address : f.user;
        if (key === undefined) continue;
        const g = groups.get(key);
        if (g === undefined) groups.set(key, { recentFailures: 1, last: f.at });
        else g.recentFailures++;
      }
      const page = paginate([...groups.keys()], (k) => k, req.query);
      const items = await Promise.all(page.items.map(async (key) => {
        const g = groups.get(key)!;
        const p = await ctx.failures.penalty(kind, key);
        return { key, recentFailures: g.recentFailures, last: new Date(g.last).toISOString(), failures: p?.failures ?? 0, penaltyMs: p?.delayMs ?? 0 };
      }));
      return withPartial({ items, next: page.next }, all);
    });
  }

  app.get('/api/v1/deliveries', {
    schema: {
      tags: ['statistics'], summary: 'Delivery counts since the server started',
      response: {
        200: {
          type: 'object',
          required: ['since', 'delivered', 'rejected', 'failed', 'bytes', 'refused'],
          properties: {
            since: { type: 'string', format: 'date-time' },
            delivered: { type: 'integer' }, rejected: { type: 'integer' }, failed: { type: 'integer' },
            bytes: { type: 'integer', description: 'octets delivered' },
            refused: { type: 'object', additionalProperties: { type: 'integer' }, description: 'refused recipients by reason' },
            ...partialProperty,
          },
        },
        ...errors(503),
      },
    },
  }, async () => {
    const totals = await ctx.activity.deliveries();
    return withPartial(totals, totals);
  });

  app.get('/api/v1/stats/history', {
    schema: {
      tags: ['statistics'], summary: `Logins, failed logins and deliveries per minute over the last ${HISTORY_MINUTES} minutes`,
      response: {
        200: {
          type: 'object',
          required: ['start', 'step', 'series'],
          properties: {
            start: { type: 'integer', description: 'the oldest minute, seconds since the epoch' },
            step: { type: 'integer', description: 'seconds per value' },
            series: {
              type: 'object',
              required: ['logins', 'failedLogins', 'deliveries'],
              properties: Object.fromEntries(['logins', 'failedLogins', 'deliveries'].map((k) => [k, { type: 'array', items: { type: 'integer' } }])),
            },
            ...partialProperty,
          },
        },
        ...errors(503),
      },
    },
  }, async () => {
    const history = await ctx.activity.history();
    return withPartial(history, history);
  });

  app.get('/api/v1/whoami', {
    schema: {
      tags: ['tokens'], summary: 'The id of the token used (to check a token)',
      response: { 200: { type: 'object', required: ['tokenId'], properties: { tokenId: { type: 'string' } } }, ...errors() },
    },
  }, async (req) => ({ tokenId: req.tokenId }));
}
