/**
 * Certificates for TLS tests, made once per test process with the openssl command in a temp
 * folder: a server certificate for 127.0.0.1/localhost (self-signed, as `poplar cert` makes it),
 * and a small CA with a client certificate for CN=alice (SASL EXTERNAL).
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSelfSigned, runOpenssl } from '../../src/net/self-signed.js';

export interface TestCerts {
  readonly dir: string;
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

let made: Promise<TestCerts> | undefined;

async function make(): Promise<TestCerts> {
  const dir = await mkdtemp(join(tmpdir(), 'poplar-certs-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const p = (f: string): string => join(dir, f);
  await makeSelfSigned({ certPath: p('cert.pem'), keyPath: p('key.pem'), names: ['localhost', '127.0.0.1'], days: 2 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await runOpenssl(['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=poplar test CA']);
  await runOpenssl(['req', ...ec, '-keyout', p('client.key'), '-out', p('client.csr'), '-subj', '/CN=alice']);
  await runOpenssl(['x509', '-req', '-in', p('client.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial',
    '-out', p('client.pem'), '-days', '2']);
  return { dir, cert: p('cert.pem'), key: p('key.pem'), ca: p('ca.pem'), clientCert: p('client.pem'), clientKey: p('client.key') };
}

export function testCerts(): Promise<TestCerts> {
  made ??= make();
  return made;
}
