/**
 * The GSSAPI acceptor (R-X20) as configured by `auth.gssapi_keytab`, `auth.gssapi_service` and
 * `auth.gssapi_realms`, over the native addon native/gssapi (built by `npm install` with node-gyp
 * against MIT Kerberos, scripts/build-gssapi.mjs). Each AUTH GSSAPI gets its own context for
 * the service principal `service@hostname`; the credential is taken from the keytab when the
 * exchange starts, so a replaced keytab is used at once. Kerberos itself (ticket decryption,
 * replay cache, wrap/unwrap tokens) is entirely libgssapi_krb5's.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GssapiAcceptor, GssContext } from './gssapi.js';

const ADDON = join('native', 'gssapi', 'build', 'Release', 'poplar_gssapi.node');
const KEYTAB_RECHECK_MS = 1000;

interface Addon {
  readonly GssContext: new (service: string, keytab: string) => GssContext;
}

let addon: Addon | Error | undefined;

/** The addon, found from this file up to the package root (dist/src/auth/sasl or lib/auth/sasl); an Error saying why not. */
export function loadGssapiAddon(): Addon | Error {
  if (addon !== undefined) return addon;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++, dir = dirname(dir)) {
    const path = join(dir, ADDON);
    if (!existsSync(path)) continue;
    try {
      addon = createRequire(import.meta.url)(path) as Addon;
    } catch (e) {
      addon = new Error(`cannot load ${path}: ${(e as Error).message}`);
    }
    return addon;
  }
  addon = new Error(`${ADDON} was not built (npm install builds it; it needs libkrb5-dev, g++, make, python3)`);
  return addon;
}

export interface GssapiSettings {
  /** `auth.gssapi_keytab`; `""`: KRB5_KTNAME, else the Kerberos default (/etc/krb5.keytab). */
  readonly keytab: string;
  /** `auth.gssapi_service`, e.g. `pop`. */
  readonly service: string;
  /** `pop3.hostname`: the host part of the service principal. */
  readonly hostname: string;
  readonly realms: readonly string[];
}

/** The file the acceptor reads: the setting, else KRB5_KTNAME (a FILE: name), else the default. */
export function keytabPath(setting: string, env: NodeJS.ProcessEnv = process.env): string {
  if (setting !== '') return setting;
  const fromEnv = env['KRB5_KTNAME'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv.replace(/^(?:FILE|WRFILE):/, '');
  return '/etc/krb5.keytab';
}

/** The acceptor, or an Error when the addon is missing. */
export function createGssapiAcceptor(s: GssapiSettings): GssapiAcceptor | Error {
  const native = loadGssapiAddon();
  if (native instanceof Error) return native;
  const path = keytabPath(s.keytab);
  const principal = `${s.service}@${s.hostname}`;
  let checkedAt = -Infinity;
  let readable = false;
  return {
    realms: s.realms,
    usable() {
      const now = Date.now();
      if (now - checkedAt >= KEYTAB_RECHECK_MS) {
        checkedAt = now;
        try {
          accessSync(path, constants.R_OK);
          readable = true;
        } catch {
          readable = false;
        }
      }
      return readable;
    },
    context: () => new native.GssContext(principal, s.keytab),
  };
}
