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
  DEFAULT_FAILURE_DELAY_MAX_MS,
  DEFAULT_FAILURE_DELAY_MS,
  DEFAULT_FAILURE_WINDOW_S,
  DEFAULT_MAX_COMMAND_LENGTH,
  DEFAULT_TIMEOUT_AUTHENTICATED_S,
  DEFAULT_TIMEOUT_UNAUTHENTICATED_S,
  MAX_MAX_COMMAND_LENGTH,
  MIN_MAX_COMMAND_LENGTH,
  MIN_TIMEOUT_AUTHENTICATED_S,
} from '../protocol/limits.js';
import { MECHANISM_NAMES } from '../auth/sasl/names.js';
import { CLIENT_WORKAROUNDS } from '../protocol/dot-stuffing.js';
import { networkProblem } from '../net/networks.js';
import { tryParseListen } from './listen.js';
import { listenAddress, meta } from './schema-meta.js';
import { lmtp, policy, quota, retention } from './schema-mail.js';
import { admin } from './schema-admin.js';
import { ldap } from './schema-ldap.js';
import { postgres } from './schema-postgres.js';


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
    pid_file: z.string().default('{data_dir}/poplar.pid').meta(meta({
      description:
        '`poplar serve` writes its process id here; `poplar reload` reads it to signal the server (SIGHUP: ' +
        'the config file, certificates and token keys are re-read). `""` writes no pid file.',
      requirements: ['R-X3', 'R-X13'],
      path: true,
    })),
    shutdown_timeout: z.number().int().min(0).default(30).meta(meta({
      description: 'On SIGTERM/SIGINT, seconds logged-in sessions get to finish (QUIT) before they are closed without UPDATE; sessions not logged in are closed at once.',
      requirements: ['R-X13'],
    })),
    workers: z.number().int().min(0).max(256).default(0).meta(meta({
      description:
        'Processes that serve POP3, POP3S and LMTP: `0` = one per available core, `1` = a single process. ' +
        'With more than one, a primary process holds the pid file, the metrics endpoint, the retention sweeper ' +
        'and the state every limit shares (connection caps, failed-login penalties, the login cache, exclusive ' +
        'claims), and replaces a worker that dies.',
      requirements: ['R-X16'],
    })),
    metrics_listen: z.string().default('').superRefine((s, ctx) => {
      if (s === '') return;
      const r = tryParseListen(s);
      if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
    }).meta(meta({
      description: 'Address (`host:port`) of the HTTP endpoint with Prometheus metrics at `/metrics` and a health check at `/health`; `""`: off. Bind it to loopback or a management network.',
      requirements: ['R-X13'],
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
    tls_listen: z.array(listenAddress).default(['0.0.0.0:995']).meta(meta({
      description:
        'Addresses for POP3 over implicit TLS (POP3S, RFC 8314). Used only when a certificate is ' +
        'configured (`tls.cert`); `[]` disables POP3S while STLS stays available.',
      requirements: ['R-S5', 'R-X3'],
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
    greeting: z.string().min(1).max(200).regex(/^[\x20-\x7e]+$/, 'printable ASCII only').default('POP3 server ready').meta(meta({
      description: 'Text of the greeting after `+OK` (the APOP banner, when on, follows it). Say as little about the software as you like.',
      requirements: ['R-X13'],
    })),
    max_connections: z.number().int().min(0).default(2000).meta(meta({
      description: 'POP3 connections open at once, server-wide; more are answered `-ERR [SYS/TEMP]` and closed. `0`: no limit. (Exchange: MaxConnections.)',
      requirements: ['R-X9'],
    })),
    max_connections_per_ip: z.number().int().min(0).default(50).meta(meta({
      description: 'POP3 connections open at once from one IP address (after PROXY, the real client\'s); more are refused like above. `0`: no limit. (Exchange: MaxConnectionFromSingleIP.)',
      requirements: ['R-X9'],
    })),
    max_connections_per_user: z.number().int().min(0).default(16).meta(meta({
      description: 'Logged-in sessions of one user at once; one more login gets `-ERR [IN-USE]`. `0`: no limit. (Exchange: MaxConnectionsPerUser, 16.)',
      requirements: ['R-X9'],
    })),
    login_timeout: z.number().int().min(0).default(300).meta(meta({
      description: 'Seconds a connection may take to log in, however often it sends a command; then it gets a notice and is closed (slow clients holding connections). `0`: no limit.',
      requirements: ['R-X9'],
    })),
    proxy_networks: z.array(z.string().superRefine((v, ctx) => {
      const problem = networkProblem(v);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    })).default([]).meta(meta({
      description: 'Networks (address/prefix) of load balancers whose PROXY protocol header (v1 or v2) is believed; a connection from there must start with one. From anywhere else a PROXY header is just a bad command.',
      requirements: ['R-X13'],
    })),
    workarounds: z.array(z.enum(CLIENT_WORKAROUNDS)).default([]).meta(meta({
      description:
        'Named client workarounds (as Dovecot\'s `pop3_client_workarounds`) applied to RETR and TOP. ' +
        '`outlook-no-nuls`: NUL octets in a message are sent as 0x80 (Outlook stops at a NUL); sizes do ' +
        'not change. `oe-ns-eoh`: a message with no empty line (its header block never ends) gets one ' +
        'sent after its last line (Outlook Express and Netscape break without it). Such a message is ' +
        'sent 2 octets longer than stored, and STAT, LIST and RETR\'s `+OK n octets` include those 2 ' +
        'octets, so sizes stay exact (R-S4). The stored size cannot tell which messages lack the line, ' +
        'so with `oe-ns-eoh` on every login reads each message\'s header block once (up to its first ' +
        'empty line; a message that has none is read whole): one read per message per login.',
      requirements: ['R-X12', 'R-S4'],
    })),
    delete_mode: z.enum(['expunge', 'hide']).default('expunge').meta(meta({
      description:
        'What QUIT does with the messages a session marked with DELE. `expunge`: removes them. ' +
        '`hide`: keeps them but POP3 never lists them again (their uids are not reused); other programs ' +
        'still see them: on Maildir they get the standard `T` (trashed) flag, which mutt and Dovecot ' +
        'show as deleted (and poplar never lists any `T` message, whoever set the flag). Hidden ' +
        'messages take space, so they still count towards quotas until retention removes them; ' +
        'retention treats them as retrieved (`retention.retrieved_days`; its default `0` keeps them).',
      requirements: ['R-X12', 'R-K4', 'R-S11'],
    })),
  })
  .prefault({})
  .meta(meta({ description: 'The POP3 service.' }));

/** Where users come from (`auth.directory`). */
export const DIRECTORIES = ['passwd-file', 'postgres', 'ldap'] as const;

const auth = z
  .strictObject({
    directory: z.enum(DIRECTORIES).default('passwd-file').meta(meta({
      description:
        'Where users and passwords come from. `passwd-file`: `auth.users_file`, managed with `poplar user`, ' +
        'with the per-user overrides in `policy.users_file` and the poll state in `policy.state_dir`. ' +
        '`postgres`: the database of `[postgres]` (run `poplar db migrate` first) holds users, credentials, ' +
        'grants, overrides and poll state, shared by every node, so LOGIN-DELAY and download limits hold for ' +
        'the cluster. `ldap`: an LDAP directory (section `[ldap]`); `poplar user add/passwd/del` then refuse, ' +
        'while quotas, retention and grants stay in poplar\'s own files.',
      requirements: ['R-X8', 'R-X17', 'R-X19'],
    })),
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
    mechanisms: z.array(z.enum(MECHANISM_NAMES)).default(['PLAIN', 'LOGIN', 'SCRAM-SHA-256']).meta(meta({
      description:
        'SASL mechanisms offered by AUTH (RFC 5034). `poplar user add/passwd` stores the credential each ' +
        'one needs: SCRAM-SHA-256 keys, the NT hash for NTLM, the HMAC-MD5 contexts for CRAM-MD5. ' +
        'OAUTHBEARER and XOAUTH2 also need `oauth.issuers`; EXTERNAL needs `tls.client_ca`; GSSAPI needs ' +
        '`auth.gssapi_realms` and a readable `auth.gssapi_keytab`.',
      requirements: ['R-S9', 'R-X4', 'R-X20'],
    })),
    trusted_networks: z.array(z.string().superRefine((v, ctx) => {
      const problem = networkProblem(v);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    })).default(['127.0.0.0/8', '::1/128']).meta(meta({
      description:
        'Networks (address/prefix) where USER/PASS, PLAIN and LOGIN are allowed without TLS. Elsewhere they ' +
        'are refused with `-ERR [AUTH]` until the client uses STLS or POP3S. `[]`: TLS always required.',
      requirements: ['R-S14'],
    })),
    apop: z.boolean().default(false).meta(meta({
      description:
        'Offer APOP (RFC 1939 §7): the greeting carries a `<pid.clock@host>` banner. Works for users whose ' +
        'shared secret is stored (`poplar user passwd` stores it while this is on).',
      requirements: ['R-K2', 'R-K9'],
    })),
    gssapi_keytab: z.string().default('').meta(meta({
      description:
        'Keytab with the key of the GSSAPI service principal `<gssapi_service>/<pop3.hostname>`. `""`: the ' +
        '`KRB5_KTNAME` environment variable, else the Kerberos default (/etc/krb5.keytab). GSSAPI is advertised ' +
        'only while this file is readable.',
      requirements: ['R-X20'],
      path: true,
    })),
    gssapi_service: z.string().regex(/^[A-Za-z0-9._-]+$/, 'a service name such as pop').default('pop').meta(meta({
      description: 'Service part of the GSSAPI principal (RFC 4752 §3.1 and RFC 5034: `pop`); the host part is `pop3.hostname`.',
      requirements: ['R-X20'],
    })),
    gssapi_realms: z.array(z.string().regex(/^[^\s@/\\]+$/, 'a Kerberos realm such as EXAMPLE.COM')).default([]).meta(meta({
      description:
        'Kerberos realms whose principals log in with GSSAPI: `carol@REALM` is the user `carol`. Principals of ' +
        'other realms and with an instance (`carol/admin@REALM`) are refused, and so are users not in the directory.',
      requirements: ['R-X20'],
    })),
    master_users: z.array(z.string()).default([]).meta(meta({
      description:
        'Users who may open any maildrop with their own password: SASL PLAIN with an authorization ' +
        'identity, or `USER name*master`. Every such login is logged (`event: "master_login"`).',
      requirements: ['R-X14'],
    })),
    failure_delay: z.number().int().min(0).max(60_000).default(DEFAULT_FAILURE_DELAY_MS).meta(meta({
      description:
        'Milliseconds a failed login (USER/PASS, APOP, AUTH) waits before its `-ERR`, after the first failure ' +
        'from an address or for a user; it doubles with each further failure up to `failure_delay_max`. Every ' +
        'login attempt, right or wrong, first waits the current delay of its address and user before its ' +
        'credential is checked. A client repeating a password that already failed for that user does not make ' +
        'it grow. `0` disables the delay.',
      requirements: ['R-X9', 'R-S13'],
    })),
    failure_delay_max: z.number().int().min(0).max(300_000).default(DEFAULT_FAILURE_DELAY_MAX_MS).meta(meta({
      description: 'Longest failed-login delay, in milliseconds.',
      requirements: ['R-X9'],
    })),
    failure_window: z.number().int().min(1).default(DEFAULT_FAILURE_WINDOW_S).meta(meta({
      description:
        'Seconds without a failure after which an address or user starts again from `failure_delay`. A ' +
        'successful login resets the user (not the address).',
      requirements: ['R-X9'],
    })),
    cache_ttl: z.number().int().min(0).max(86_400).default(3600).meta(meta({
      description:
        'Seconds a successful password login (USER/PASS, PLAIN, LOGIN) is remembered, like Dovecot\'s ' +
        '`auth_cache_ttl`: the same user with the same password and an unchanged stored hash is let in ' +
        'again without re-running the hash. Only a keyed MAC is kept, in memory; a wrong password always ' +
        'takes the full check. `0` disables the cache. See docs/authentication.md.',
      requirements: ['R-S9', 'R-S13'],
    })),
    cache_size: z.number().int().min(0).max(10_000_000).default(10_000).meta(meta({
      description:
        'Most users the login cache remembers at once (least recently used out first; ~150 bytes each). ' +
        '`0` disables the cache.',
      requirements: ['R-S9'],
    })),
  })
  .prefault({})
  .meta(meta({ description: 'Users and passwords.' }));

const storage = z
  .strictObject({
    backend: z.enum(['maildir', 'memory', 'postgres']).default('maildir').meta(meta({
      description:
        'Where mail is kept. `maildir`: one Maildir per maildrop (`maildir_path`). `postgres`: in the ' +
        'database of `[postgres]`, so several poplar nodes can serve the same maildrops (run ' +
        '`poplar db migrate` first). `memory` loses everything on exit and is meant for tests.',
      requirements: ['R-X7', 'R-X17'],
    })),
    maildir_path: z.string().min(1).default('{data_dir}/mail/%u').meta(meta({
      description:
        'Maildir of each maildrop; `%u` is replaced by the maildrop name, `{data_dir}` by `server.data_dir`.',
      requirements: ['R-X7'],
      path: true,
    })),
    maildir_dirty_window: z.number().int().min(1).max(3_600_000).default(100).meta(meta({
      description:
        'Milliseconds: a Maildir folder (`new/`, `cur/`) whose ctime is this close to the moment poplar read it is read again at the next login instead of reusing the shared listing. Any local file system needs no more than the default. Maildirs on NFS are not supported: attribute caching hides other hosts\' changes for longer than any window (poplar trusts stat(2) of new/, cur/ and poplar-uidlist).',
      requirements: ['R-S3', 'R-X7'],
    })),
    maildir_reads: z.enum(['event-loop', 'threadpool']).default('event-loop').meta(meta({
      description:
        'How RETR and TOP read message files. `event-loop`: plain read(2) calls on the server thread, cheapest when mail is in the page cache or on SSD (a read that misses the cache holds every session for that read, as nginx does by default). `threadpool`: through libuv\'s thread pool, two wake-ups per message more, so a slow disk stalls no other session.',
      requirements: ['R-X7'],
    })),
  })
  .prefault({})
  .meta(meta({ description: 'Mail storage.' }));

const tls = z
  .strictObject({
    cert: z.string().default('{data_dir}/tls/cert.pem').meta(meta({
      description:
        'PEM certificate chain for POP3S and STLS. When the file does not exist, TLS is off (`poplar cert` ' +
        'makes a self-signed pair here). Re-read on SIGHUP / `poplar reload`.',
      requirements: ['R-X3', 'R-S5'],
      path: true,
    })),
    key: z.string().default('{data_dir}/tls/key.pem').meta(meta({
      description: 'PEM private key of `tls.cert`.',
      requirements: ['R-X3'],
      path: true,
    })),
    min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').meta(meta({
      description: 'Lowest TLS version accepted.',
      requirements: ['R-X3'],
    })),
    client_ca: z.string().default('').meta(meta({
      description:
        'PEM CA certificates whose client certificates SASL EXTERNAL accepts (the subject CN or an ' +
        'e-mail subjectAltName is the user). `""`: no client certificates are asked for.',
      requirements: ['R-X4'],
      path: true,
    })),
  })
  .prefault({})
  .meta(meta({ description: 'TLS: POP3S and STLS.' }));

const oauth = z
  .strictObject({
    issuers: z.array(z.string().regex(/^\S+ \S+$/, 'expected "ISSUER JWKS" (JWKS: https URL or file path)')).default([]).meta(meta({
      description:
        'Trusted token issuers for OAUTHBEARER and XOAUTH2, each `"<iss> <jwks>"`: the `iss` claim, then ' +
        'the issuer\'s JWKS as an https URL or an absolute file path. Tokens are verified as signed JWTs.',
      requirements: ['R-X4'],
    })),
    audience: z.string().default('').meta(meta({
      description: 'Required `aud` claim of bearer tokens; `""` does not check it.',
      requirements: ['R-X4'],
    })),
    user_claim: z.string().min(1).default('email').meta(meta({
      description: 'Token claim holding the poplar user name.',
      requirements: ['R-X4'],
    })),
  })
  .prefault({})
  .meta(meta({ description: 'OAuth 2.0 bearer tokens (OAUTHBEARER, XOAUTH2).' }));

const log = z
  .strictObject({
    level: z.enum(LOG_LEVELS).default('info').meta(meta({
      description: 'Least severe log level written; `silent` writes nothing.',
      requirements: ['R-X13'],
    })),
    protocol: z.boolean().default(false).meta(meta({
      description: 'Log every command (`C:`) and status line (`S:`) of every session at `debug` level, passwords and SASL data masked; needs `level = "debug"`. For troubleshooting a client.',
      requirements: ['R-X13'],
    })),
  })
  .prefault({})
  .meta(meta({ description: 'Logging.' }));

export const configSchema = z.strictObject({ server, pop3, auth, ldap, tls, oauth, storage, postgres, lmtp, quota, retention, policy, log, admin });

/** The validated, effective configuration. */
export type Config = z.output<typeof configSchema>;
/** What a config file may contain (every key optional). */
export type ConfigInput = z.input<typeof configSchema>;
export type SectionName = keyof Config;

/** `section.key` of every key, checked against the schema. */
export type DottedKey = { [S in SectionName]: `${S}${'.'}${keyof Config[S] & string}` }[SectionName];
