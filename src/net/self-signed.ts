/**
 * Makes a self-signed certificate and key with the `openssl` command (OpenSSL 1.1.1 or later),
 * for tests and the quick start (`poplar cert`). Node's crypto makes keys but not X.509
 * certificates; the openssl CLI is on every system that has OpenSSL, so no dependency is added.
 * The key is an ECDSA P-256 key, written with mode 0600.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir } from 'node:fs/promises';
import { isIP } from 'node:net';
import { dirname } from 'node:path';

export interface SelfSignedOptions {
  readonly certPath: string;
  readonly keyPath: string;
  /** Host names and IP addresses the certificate is for; the first is the subject CN. */
  readonly names: readonly string[];
  readonly days: number;
}

export function runOpenssl(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) {
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
        reject(new Error(missing ? 'the openssl command is not installed (Debian: apt-get install openssl)' : `openssl failed: ${stderr.trim() || err.message}`));
      } else resolve(stdout);
    });
  });
}

export const subjectAltName = (names: readonly string[]): string =>
  names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');

export async function makeSelfSigned(o: SelfSignedOptions): Promise<void> {
  await mkdir(dirname(o.certPath), { recursive: true });
  await mkdir(dirname(o.keyPath), { recursive: true, mode: 0o700 });
  const cn = (o.names[0] ?? 'localhost').replace(/[/=]/g, '');
  await runOpenssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', o.keyPath, '-out', o.certPath, '-days', String(o.days), '-subj', `/CN=${cn}`,
    '-addext', `subjectAltName=${subjectAltName(o.names)}`,
    '-addext', 'basicConstraints=critical,CA:FALSE',
    '-addext', 'extendedKeyUsage=serverAuth',
  ]);
  await chmod(o.keyPath, 0o600);
}
