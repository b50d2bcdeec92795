/** The `[admin]` section of the config file (R-X21): the admin HTTP API and web console. */
import { z } from 'zod';
import { tryParseListen } from './listen.js';
import { meta } from './schema-meta.js';

export const admin = z
  .strictObject({
    listen: z.string().default('').superRefine((s, ctx) => {
      if (s === '') return;
      const r = tryParseListen(s);
      if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
    }).meta(meta({
      description:
        'Address (`host:port`, e.g. `"127.0.0.1:8110"`) of the admin API (`/api/v1`) and web console (`/`); `""`: off. ' +
        'A non-loopback address needs `admin.tls_cert` and `admin.tls_key` (HTTPS), or the server refuses to start. ' +
        'Requests carry a bearer token made by `poplar admin token`.',
      requirements: ['R-X21'],
    })),
    tls_cert: z.string().default('').meta(meta({
      description: 'PEM certificate chain of the admin listener; with `admin.tls_key` it speaks HTTPS. `""`: plain HTTP, allowed on loopback only.',
      requirements: ['R-X21'],
      path: true,
    })),
    tls_key: z.string().default('').meta(meta({
      description: 'PEM private key of `admin.tls_cert`.',
      requirements: ['R-X21'],
      path: true,
    })),
    tokens_file: z.string().default('{data_dir}/admin-tokens').meta(meta({
      description: 'The admin API\'s bearer tokens, stored as SHA-256 hashes only (`poplar admin token` adds and revokes them); re-read when it changes.',
      requirements: ['R-X21'],
      path: true,
    })),
  })
  .prefault({})
  .meta(meta({ description: 'Admin API and web console.' }));
