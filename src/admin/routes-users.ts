/**
 * Admin API routes about users and maildrops (R-X21): users (list with quota and usage, add, set
 * password, delete), grants (R-K3), per-user policy overrides (quota R-S16, retention R-S18,
 * LOGIN-DELAY and download cap R-X10) and per-maildrop counts and sizes. A read-only directory
 * (`writable: false`, e.g. LDAP) is listed with its note and refuses changes with READ_ONLY.
 */
import type { FastifyInstance } from 'fastify';
import type { WritableDirectory } from '../auth/directory.js';
import { OVERRIDE_KEYS, type OverrideKey } from '../policy/overrides.js';
import { userNameProblem } from '../user-name.js';
import { ApiError, errors, nameParam, pageOf, pageQuery, paginate, type PageQuery } from './api-common.js';
import type { AdminContext } from './context.js';

const usageSchema = { type: 'object', required: ['messages', 'bytes'], properties: { messages: { type: 'integer' }, bytes: { type: 'integer' } } } as const;

const userSchema = {
  type: 'object',
  required: ['name', 'grants', 'quota', 'usage'],
  properties: {
    name: { type: 'string' },
    grants: { type: 'array', items: { type: 'string' }, description: 'other maildrops this user may open (R-K3)' },
    quota: { type: 'object', required: ['bytes', 'messages'], properties: { bytes: { type: 'integer' }, messages: { type: 'integer' } }, description: '0: unlimited' },
    usage: usageSchema,
  },
} as const;

const policySchema = {
  type: 'object',
  required: ['effective', 'overrides'],
  properties: {
    effective: {
      type: 'object',
      required: [...OVERRIDE_KEYS],
      properties: Object.fromEntries(OVERRIDE_KEYS.map((k) => [k, { type: 'integer' }])),
      description: 'the values in force (0: unlimited, kept forever, or none)',
    },
    overrides: { type: 'object', properties: Object.fromEntries(OVERRIDE_KEYS.map((k) => [k, { type: 'integer' }])), description: "this user's own values" },
  },
} as const;

const passwordBody = {
  type: 'object', required: ['password'], additionalProperties: false,
  properties: { password: { type: 'string', minLength: 1, maxLength: 1024 } },
} as const;

function writable(ctx: AdminContext): WritableDirectory {
  if (!ctx.directory.writable) throw new ApiError(409, 'READ_ONLY', `the user directory is read-only: ${ctx.directory.note}`);
  return ctx.directory;
}

async function existing(ctx: AdminContext, name: string): Promise<void> {
  if ((await ctx.directory.lookup(name)) === undefined) throw new ApiError(404, 'NOT_FOUND', `no such user "${name}"`);
}

function checkName(name: string, what = 'user name'): void {
  const problem = userNameProblem(name);
  if (problem !== undefined) throw new ApiError(400, 'INVALID_NAME', `invalid ${what}: ${problem}`);
}

async function policyOf(ctx: AdminContext, name: string): Promise<object> {
  const p = await ctx.policies.get(name);
  const effective: Record<OverrideKey, number> = {
    quota_bytes: p.quotaBytes, quota_messages: p.quotaMessages, retrieved_days: p.retrievedDays,
    unretrieved_days: p.unretrievedDays, login_delay: p.loginDelay, download_bytes_per_day: p.downloadBytesPerDay,
  };
  return { effective, overrides: (await ctx.policies.store.get(name)) ?? {} };
}

export function userRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const audit = (action: string, fields: object, tokenId: string): void =>
    ctx.logger.info({ event: 'admin_change', action, ...fields, tokenId }, `admin: ${action}`);

  app.get<{ Querystring: PageQuery }>('/api/v1/users', {
    schema: {
      tags: ['users'], summary: 'Users with their quota and usage', querystring: pageQuery,
      response: {
        200: {
          type: 'object', required: ['items', 'next', 'writable'],
          properties: {
            ...(pageOf(userSchema, '') as { properties: object }).properties,
            writable: { type: 'boolean', description: 'false: the directory is read-only (users, passwords and grants change elsewhere)' },
            note: { type: 'string', description: 'why the directory is read-only' },
          },
        },
        ...errors(400),
      },
    },
  }, async (req) => {
    const page = paginate(await ctx.directory.list(), (u) => u.name, req.query);
    const items = await Promise.all(page.items.map(async (u) => {
      const [p, usage] = await Promise.all([ctx.policies.get(u.name), ctx.store.usage(u.name)]);
      return { name: u.name, grants: [...u.grants], quota: { bytes: p.quotaBytes, messages: p.quotaMessages }, usage: { messages: usage.messages, bytes: usage.bytes } };
    }));
    return { ...page, items, writable: ctx.directory.writable, ...(ctx.directory.writable ? {} : { note: ctx.directory.note }) };
  });

  app.post<{ Body: { name: string; password: string } }>('/api/v1/users', {
    schema: {
      tags: ['users'], summary: 'Add a user',
      body: { ...passwordBody, required: ['name', 'password'], properties: { name: { type: 'string', minLength: 1, maxLength: 255 }, ...passwordBody.properties } },
      response: { 201: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } }, ...errors(400, 409) },
    },
  }, async (req, reply) => {
    const dir = writable(ctx);
    checkName(req.body.name);
    const made = await ctx.hashPassword(req.body.password);
    await dir.add(req.body.name, made.password, made.credentials);
    audit('user_add', { user: req.body.name }, req.tokenId);
    return reply.code(201).send({ name: req.body.name });
  });

  app.put<{ Params: { name: string }; Body: { password: string } }>('/api/v1/users/:name/password', {
    schema: { tags: ['users'], summary: "Set a user's password", params: nameParam, body: passwordBody, response: { 204: { type: 'null', description: 'done' }, ...errors(400, 404, 409) } },
  }, async (req, reply) => {
    const dir = writable(ctx);
    await existing(ctx, req.params.name);
    const made = await ctx.hashPassword(req.body.password);
    await dir.setPassword(req.params.name, made.password, made.credentials);
    audit('user_password', { user: req.params.name }, req.tokenId);
    return reply.code(204).send();
  });

  app.delete<{ Params: { name: string } }>('/api/v1/users/:name', {
    schema: { tags: ['users'], summary: 'Delete a user (their mail is kept)', params: nameParam, response: { 204: { type: 'null', description: 'done' }, ...errors(404, 409) } },
  }, async (req, reply) => {
    await writable(ctx).remove(req.params.name);
    audit('user_delete', { user: req.params.name }, req.tokenId);
    return reply.code(204).send();
  });

  app.get<{ Querystring: PageQuery }>('/api/v1/grants', {
    schema: {
      tags: ['grants'], summary: 'Every grant: which user may open which other maildrop (R-K3)', querystring: pageQuery,
      response: { 200: pageOf({ type: 'object', required: ['user', 'mailbox'], properties: { user: { type: 'string' }, mailbox: { type: 'string' } } }, 'grants ordered by user, then mailbox'), ...errors(400) },
    },
  }, async (req) => {
    const all = (await ctx.directory.list()).flatMap((u) => u.grants.map((mailbox) => ({ user: u.name, mailbox })));
    return paginate(all, (g) => `${g.user}\0${g.mailbox}`, req.query);
  });

  app.post<{ Params: { name: string }; Body: { mailbox: string } }>('/api/v1/users/:name/grants', {
    schema: {
      tags: ['grants'], summary: "Let the user open another user's maildrop", params: nameParam,
      body: { type: 'object', required: ['mailbox'], additionalProperties: false, properties: { mailbox: { type: 'string', minLength: 1, maxLength: 255 } } },
      response: { 201: { type: 'object', required: ['user', 'mailbox'], properties: { user: { type: 'string' }, mailbox: { type: 'string' } } }, ...errors(400, 404, 409) },
    },
  }, async (req, reply) => {
    const dir = writable(ctx);
    checkName(req.body.mailbox, 'maildrop name');
    await dir.grant(req.params.name, req.body.mailbox);
    audit('grant', { user: req.params.name, mailbox: req.body.mailbox }, req.tokenId);
    return reply.code(201).send({ user: req.params.name, mailbox: req.body.mailbox });
  });

  app.delete<{ Params: { name: string; mailbox: string } }>('/api/v1/users/:name/grants/:mailbox', {
    schema: {
      tags: ['grants'], summary: 'Take a grant away',
      params: { type: 'object', required: ['name', 'mailbox'], properties: { name: { type: 'string' }, mailbox: { type: 'string' } } },
      response: { 204: { type: 'null', description: 'done' }, ...errors(404, 409) },
    },
  }, async (req, reply) => {
    await writable(ctx).revoke(req.params.name, req.params.mailbox);
    audit('revoke', { user: req.params.name, mailbox: req.params.mailbox }, req.tokenId);
    return reply.code(204).send();
  });

  app.get<{ Params: { name: string } }>('/api/v1/users/:name/policy', {
    schema: { tags: ['policy'], summary: "A user's quota, retention, login delay and download cap", params: nameParam, response: { 200: policySchema, ...errors(404) } },
  }, async (req) => {
    await existing(ctx, req.params.name);
    return policyOf(ctx, req.params.name);
  });

  app.patch<{ Params: { name: string }; Body: Partial<Record<OverrideKey, number | null>> }>('/api/v1/users/:name/policy', {
    schema: {
      tags: ['policy'], summary: "Set (a number) or drop (null) a user's overrides", params: nameParam,
      body: {
        type: 'object', additionalProperties: false, minProperties: 1,
        properties: Object.fromEntries(OVERRIDE_KEYS.map((k) => [k, { type: ['integer', 'null'], minimum: 0, maximum: Number.MAX_SAFE_INTEGER }])),
      },
      response: { 200: policySchema, ...errors(400, 404) },
    },
  }, async (req) => {
    await existing(ctx, req.params.name);
    await ctx.policies.update(req.params.name, req.body);
    audit('policy', { user: req.params.name, changes: req.body }, req.tokenId);
    return policyOf(ctx, req.params.name);
  });

  app.get<{ Querystring: PageQuery }>('/api/v1/maildrops', {
    schema: {
      tags: ['maildrops'], summary: "Message count and size of every maildrop (each user's and every granted one)", querystring: pageQuery,
      response: { 200: pageOf({ ...usageSchema, required: ['name', ...usageSchema.required], properties: { name: { type: 'string' }, ...usageSchema.properties } }, 'maildrops ordered by name'), ...errors(400) },
    },
  }, async (req) => {
    const names = [...new Set((await ctx.directory.list()).flatMap((u) => [u.name, ...u.grants]))];
    const page = paginate(names, (n) => n, req.query);
    const items = await Promise.all(page.items.map(async (name) => ({ name, ...(await ctx.store.usage(name)) })));
    return { items, next: page.next };
  });
}
