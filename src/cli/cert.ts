/**
 * `poplar cert` (R-X3): makes a self-signed certificate and key at `tls.cert` / `tls.key` (by
 * default in `<data_dir>/tls/`), so that `poplar serve` offers POP3S and STLS: for the names given
 * with --name (the first is the subject) and the host name, localhost, 127.0.0.1 and ::1 (unless
 * --no-default-names). Meant for tests and the quick start; clients must be told to trust it (curl
 * --cacert, or -k). Uses the openssl command. An existing pair is kept unless --force; a running
 * server picks a new one up on `poplar reload`.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { Command } from 'commander';
import { makeSelfSigned } from '../net/self-signed.js';
import { CliError, configFrom, withConfigOptions, type ConfigOptions } from './common.js';

interface CertOptions extends ConfigOptions {
  name: string[];
  defaultNames: boolean;
  days: string;
  force?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

async function cert(opts: CertOptions): Promise<void> {
  const config = configFrom(opts);
  const { cert: certPath, key: keyPath } = config.tls;
  if (!opts.force && (existsSync(certPath) || existsSync(keyPath))) {
    throw new CliError(`${existsSync(certPath) ? certPath : keyPath} exists; use --force to replace it`);
  }
  const days = Number(opts.days);
  if (!Number.isInteger(days) || days < 1 || days > 3650) throw new CliError('--days must be 1–3650');
  // The names given first (the first is the subject CN), then the defaults every local client uses.
  const defaults = opts.defaultNames ? [config.pop3.hostname || hostname(), 'localhost', '127.0.0.1', '::1'] : [];
  const names = [...new Set([...opts.name, ...defaults])];
  if (names.length === 0) throw new CliError('--no-default-names needs at least one --name');
  await makeSelfSigned({ certPath, keyPath, names, days });
  const x509 = new X509Certificate(await readFile(certPath));
  process.stdout.write(
    [
      `certificate: ${certPath}`,
      `key:         ${keyPath}`,
      `names:       ${x509.subjectAltName ?? ''}`,
      `valid until: ${x509.validTo}`,
      `sha256:      ${x509.fingerprint256}`,
      'A running server uses it after "poplar reload". Clients must trust it: curl --cacert <certificate>.',
      '',
    ].join('\n'),
  );
}

export function certCommand(): Command {
  return withConfigOptions(
    new Command('cert')
      .description('make a self-signed TLS certificate and key at tls.cert / tls.key')
      .option('--name <host>', 'host name or IP address the certificate is for, besides the defaults (repeatable)', collect, [])
      .option('--no-default-names', 'leave out the defaults: the host name (pop3.hostname), localhost, 127.0.0.1 and ::1')
      .option('--days <n>', 'validity in days', '825')
      .option('--force', 'replace an existing certificate and key'),
  ).action((opts: CertOptions) => cert(opts));
}
