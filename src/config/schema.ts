/**
 * The one schema of the TOML config file (DESIGN.md "Every setting lives in one schema"). Each key
 * carries its default, its range or choices, a doc string and the requirement ids it serves, in
 * zod metadata (`description`, `requirements`); config/docgen.ts turns this into
 * docs/configuration.md. Objects are strict: an unknown key is an error, never ignored.
 * Keys are snake_case in TOML and in the `Config` type alike.
 */
import { z } from 'zod';
import {
  DEFAULT_MAX_AUTH_FAILURES,
  DEFAULT_MAX_BAD_COMMANDS,
  DEFAULT_MAX_COMMAND_LENGTH,
  DEFAULT_TIMEOUT_AUTHENTICATED_S,
  DEFAULT_TIMEOUT_UNAUTHENTICATED_S,
  MAX_MAX_COMMAND_LENGTH,
  MIN_MAX_COMMAND_LENGTH,
  MIN_TIMEOUT_AUTHENTICATED_S,
} from '../protocol/limits.js';
import { tryParseListen } from './listen.js';

/** Metadata every key carries; read back by docgen through `schema.meta()`. */
export type KeyMeta = {
  description: string;
  requirements?: string[];
  /** The value is a file system path: relative paths are resolved, `{data_dir}` is expanded. */
  path?: boolean;
};

const meta = (m: KeyMeta): KeyMeta => m;

const listenAddress = z.string().superRefine((s, ctx) => {
  const r = tryParseListen(s);
  if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
});

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const server = z
  .strictObject({
    data_dir: z.string().min(1).default('/var/lib/poplar').meta(meta({
      description:
        'Directory holding poplar\'s state: the users file and the Maildirs by default. A relative path ' +
        'is resolved against the config file\'s directory, or against the current directory when given ' +
        'by `--data` or `-o`.',
      requirements: ['R-X7'],
      path: true,
    })),
    first_run_user: z.string().default('demo').meta(meta({
      description:
        'On an empty data directory, `poplar serve` creates this user with a random password, prints ' +
        'the password once and drops a welcome message into its maildrop. `""` disables this.',
    })),
  })
  .prefault({})
  .meta(meta({ description: 'Where poplar keeps its state.' }));

const pop3 = z
  .strictObject({
    listen: z.array(listenAddress).default(['0.0.0.0:110']).meta(meta({
      description:
        'Addresses to accept POP3 connections on, each `host:port`; IPv6 in brackets, e.g. `[::]:110`. ' +
        'A plain string given with `-o` becomes a one-element list.',
      requirements: ['R-S5', 'R-X13'],
    })),
    max_command_length: z
      .number().int().min(MIN_MAX_COMMAND_LENGTH).max(MAX_MAX_COMMAND_LENGTH)
      .default(DEFAULT_MAX_COMMAND_LENGTH)
      .meta(meta({
        description: 'Longest command line accepted, in octets including CRLF; a longer one gets `-ERR`.',
        requirements: ['R-S2'],
      })),
    timeout_unauthenticated: z.number().int().min(1).default(DEFAULT_TIMEOUT_UNAUTHENTICATED_S).meta(meta({
      description: 'Seconds of inactivity before a session that has not logged in is closed.',
      requirements: ['R-S8'],
    })),
    timeout_authenticated: z
      .number().int().min(MIN_TIMEOUT_AUTHENTICATED_S)
      .default(DEFAULT_TIMEOUT_AUTHENTICATED_S)
      .meta(meta({
        description:
          'Seconds of inactivity before a logged-in session is closed (no UPDATE state is entered). ' +
          'RFC 1939 §3 requires at least 10 minutes.',
        requirements: ['R-S8'],
      })),
    lock_mode: z.enum(['snapshot', 'exclusive']).default('snapshot').meta(meta({
      description:
        '`snapshot`: a session sees the maildrop as it was at login and others may log in too. ' +
        '`exclusive`: RFC-strict locking, a second login gets `-ERR [IN-USE]`.',
      requirements: ['R-S3'],
    })),
    last_command: z.boolean().default(false).meta(meta({
      description: 'Offer the obsolete LAST command (RFC 1460) for qpopper-era clients.',
      requirements: ['R-K7'],
    })),
    max_bad_commands: z.number().int().min(1).default(DEFAULT_MAX_BAD_COMMANDS).meta(meta({
      description: 'Unknown or malformed commands tolerated in one session before it is closed.',
      requirements: ['R-S10'],
    })),
    max_auth_failures: z.number().int().min(1).default(DEFAULT_MAX_AUTH_FAILURES).meta(meta({
      description: 'Failed logins tolerated in one session before it is closed.',
      requirements: ['R-S10'],
    })),
    hostname: z.string().default('').meta(meta({
      description: 'Host name shown in the greeting banner and logs; `""` means the system host name.',
      requirements: ['R-K2', 'R-X13'],
    })),
  })
  .prefault({})
  .meta(meta({ description: 'The POP3 service.' }));

const auth = z
  .strictObject({
    users_file: z.string().min(1).default('{data_dir}/users').meta(meta({
      description:
        'The passwd-file user directory (Dovecot passwd-file format). `{data_dir}` expands to ' +
        '`server.data_dir`. Changes are picked up without a restart.',
      requirements: ['R-X8'],
      path: true,
    })),
    password_scheme: z.enum(['scrypt']).default('scrypt').meta(meta({
      description: 'Scheme used for new password hashes (`poplar user add`, `user passwd`).',
      requirements: ['R-X8'],
    })),
    scrypt_cost: z.number().int().min(14).max(20).default(15).meta(meta({
      description: 'scrypt cost as log2 N for new hashes (r=8, p=1); each step doubles time and memory.',
      requirements: ['R-X8'],
    })),
  })
  .prefault({})
  .meta(meta({ description: 'Users and passwords.' }));

const storage = z
  .strictObject({
    backend: z.enum(['maildir', 'memory']).default('maildir').meta(meta({
      description: 'Where mail is kept. `memory` loses everything on exit and is meant for tests.',
      requirements: ['R-X7'],
    })),
    maildir_path: z.string().min(1).default('{data_dir}/mail/%u').meta(meta({
      description:
        'Maildir of each maildrop; `%u` is replaced by the maildrop name, `{data_dir}` by `server.data_dir`.',
      requirements: ['R-X7'],
      path: true,
    })),
  })
  .prefault({})
  .meta(meta({ description: 'Mail storage.' }));

const log = z
  .strictObject({
    level: z.enum(LOG_LEVELS).default('info').meta(meta({
      description: 'Least severe log level written; `silent` writes nothing.',
      requirements: ['R-X13'],
    })),
  })
  .prefault({})
  .meta(meta({ description: 'Logging.' }));

export const configSchema = z.strictObject({ server, pop3, auth, storage, log });

/** The validated, effective configuration. */
export type Config = z.output<typeof configSchema>;
/** What a config file may contain (every key optional). */
export type ConfigInput = z.input<typeof configSchema>;
export type SectionName = keyof Config;
