/**
 * The `[ldap]` section of the config schema (config/schema.ts): the LDAP user directory
 * (`auth.directory = "ldap"`, R-X19). Same rules as the rest of the schema: every key has its
 * default, range, doc string and requirement ids; `bind_password` is marked secret (never shown
 * by `poplar config show`, never logged).
 */
import { z } from 'zod';
import { meta } from './schema-meta.js';

/** Why a space-separated list of LDAP URLs is not one, or undefined. */
export function ldapUrlProblem(text: string): string | undefined {
  for (const url of text.split(/\s+/).filter((u) => u !== '')) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return `"${url}" is not a URL`;
    }
    if (parsed.protocol !== 'ldap:' && parsed.protocol !== 'ldaps:') return `"${url}": expected ldap:// or ldaps://`;
    if ((parsed.pathname !== '' && parsed.pathname !== '/') || parsed.search !== '' || parsed.username !== '') {
      return `"${url}": only scheme, host and port are allowed`;
    }
  }
  return undefined;
}

const attribute = (fallback: string, description: string): z.ZodDefault<z.ZodString> =>
  z.string().regex(/^([A-Za-z][A-Za-z0-9-]*)?$/, 'an attribute name (letters, digits, -)').default(fallback)
    .meta(meta({ description, requirements: ['R-X19'] }));

export const ldap = z
  .strictObject({
    url: z.string().default('').superRefine((s, ctx) => {
      const problem = ldapUrlProblem(s);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    }).meta(meta({
      description:
        'The directory server(s): `ldap://host[:port]` or `ldaps://host[:port]` (TLS from the start), several ' +
        'separated by spaces; the next is tried when one cannot be reached (failover). Needed when ' +
        '`auth.directory = "ldap"`.',
      requirements: ['R-X19'],
    })),
    base_dn: z.string().default('').meta(meta({
      description: 'Where users are searched (subtree), e.g. `ou=people,dc=example,dc=org`.',
      requirements: ['R-X19'],
    })),
    user_filter: z.string().default('(&(objectClass=inetOrgPerson)(uid=%u))').refine((s) => s.includes('%u'), 'must contain %u')
      .meta(meta({
        description:
          'RFC 4515 filter finding one user; `%u` is the user name, escaped per RFC 4515. `poplar user list` ' +
          'and retention use it with `%u` as `*` (every user). No entry, or more than one, is no user.',
        requirements: ['R-X19'],
      })),
    bind_dn: z.string().default('').meta(meta({
      description: 'DN of the service account poplar binds as for look-ups; `""` searches anonymously.',
      requirements: ['R-X19'],
    })),
    bind_password: z.string().default('').meta(meta({
      description: 'Password of `bind_dn`. Prefer `bind_password_file`. Never shown by `poplar config show`.',
      requirements: ['R-X19'],
      secret: true,
    })),
    bind_password_file: z.string().default('').meta(meta({
      description: 'File whose first line is the password of `bind_dn` (instead of `bind_password`); keep it mode 0600.',
      requirements: ['R-X19'],
      path: true,
    })),
    starttls: z.boolean().default(false).meta(meta({
      description:
        'Upgrade each `ldap://` connection with StartTLS (RFC 4513 §3) before anything is sent; a server that ' +
        'refuses, or a certificate that does not verify, makes the directory unavailable.',
      requirements: ['R-X19'],
    })),
    ca_file: z.string().default('').meta(meta({
      description:
        'PEM CA certificate(s) the directory\'s certificate must chain to (ldaps:// and StartTLS); `""`: the ' +
        'system\'s CAs. The host name in the URL must match the certificate.',
      requirements: ['R-X19'],
      path: true,
    })),
    timeout_ms: z.number().int().min(100).max(120_000).default(5000).meta(meta({
      description:
        'Milliseconds to connect and for each operation; a directory slower than this (or down) answers ' +
        '`-ERR [SYS/TEMP]` to a login and `451` to an LMTP recipient.',
      requirements: ['R-X19'],
    })),
    password_mode: z.enum(['bind', 'compare']).default('bind').meta(meta({
      description:
        '`bind`: a password is checked by binding as the user\'s DN on a separate connection. `compare`: the ' +
        'service account reads `password_attribute` (a `{SCHEME}` hash such as `{SSHA}` or `{CRYPT}$6$`) ' +
        'and poplar verifies it; that attribute also serves SCRAM-SHA-256, CRAM-MD5, NTLM and APOP when it ' +
        'holds what they need.',
      requirements: ['R-X19', 'R-S13'],
    })),
    user_attribute: attribute('uid', 'Attribute holding the user name (Active Directory: `sAMAccountName`).'),
    mail_attribute: attribute('mail', 'Attribute holding mail addresses: an LMTP recipient is found by it as well as by user name; `""`: by name only.'),
    maildrop_attribute: attribute('', 'Attribute naming the user\'s maildrop; `""` (or no value): the user name.'),
    quota_attribute: attribute('', 'Attribute holding the storage quota in octets (or with K, M, G); a `poplar quota set` value wins over it; `""`: none.'),
    master_attribute: attribute('', 'Attribute whose value `TRUE` (or `1`, `yes`) makes the user a master user (R-X14), besides `auth.master_users`; `""`: none.'),
    password_attribute: attribute('userPassword', 'Attribute with the stored `{SCHEME}` hash, read in `compare` mode only.'),
  })
  .prefault({})
  .meta(meta({ description: 'The LDAP user directory (`auth.directory = "ldap"`).' }));
