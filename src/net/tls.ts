/**
 * TLS for POP3 (R-X3, R-S5): the certificate and key (PEM files), the lowest protocol version
 * (TLS 1.2 by default), and an optional CA whose client certificates SASL EXTERNAL accepts. The
 * same provider serves the implicit-TLS listener (RFC 8314) and STLS (RFC 2595). `reload()`
 * re-reads the files, or reads the ones a reloaded configuration names (SIGHUP, `poplar reload`):
 * a new certificate, key, lowest version or client CA; new connections get the new context, live
 * ones keep theirs; a reload that fails keeps the old context and files.
 */
import type { Duplex } from 'node:stream';
import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import type { PeerIdentity } from '../auth/sasl/mechanism.js';

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly minVersion: TlsVersion;
  /** PEM CA bundle for client certificates (EXTERNAL); empty: none are asked for. */
  readonly clientCa: string;
}

export class TlsProvider {
  private constructor(
    private files: TlsFiles,
    private current: { context: SecureContext; cas: X509Certificate[] },
  ) {}

  static async load(files: TlsFiles): Promise<TlsProvider> {
    return new TlsProvider(files, await TlsProvider.build(files));
  }

  private static async build(f: TlsFiles): Promise<{ context: SecureContext; cas: X509Certificate[] }> {
    const [cert, key, ca] = await Promise.all([
      readFile(f.cert),
      readFile(f.key),
      f.clientCa === '' ? Promise.resolve(undefined) : readFile(f.clientCa),
    ]);
    const context = createSecureContext({ cert, key, minVersion: f.minVersion, ...(ca === undefined ? {} : { ca }) });
    const cas = (ca?.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [])
      .map((pem) => new X509Certificate(pem));
    return { context, cas };
  }

  /** Reads certificate, key and CA again (or `files`); throws, keeping the old context, if they do not load. */
  async reload(files: TlsFiles = this.files): Promise<void> {
    const next = await TlsProvider.build(files);
    this.files = files;
    this.current = next;
  }

  get requestCert(): boolean {
    return this.files.clientCa !== '';
  }

  /** Starts the server side of TLS on an accepted socket (implicit TLS, or STLS). */
  wrap(socket: Socket | Duplex): TLSSocket {
    return new TLSSocket(socket, {
      isServer: true,
      secureContext: this.current.context,
      requestCert: this.requestCert,
      // A client without a certificate may still log in with a password; EXTERNAL checks `authorized`.
      rejectUnauthorized: false,
    });
  }

  /**
   * The client certificate's names when one of the configured CAs issued it: the issuer matches,
   * the CA's signature verifies, and both are within their validity period. (A TLSSocket made
   * outside a tls.Server does not set `authorized`, so poplar checks this itself.) Client
   * certificates must be issued directly by a configured CA; intermediate chains are not followed.
   */
  peerIdentity(socket: TLSSocket): PeerIdentity | undefined {
    const peer = socket.getPeerX509Certificate();
    if (peer === undefined || this.current.cas.length === 0) return undefined;
    const now = Date.now();
    const valid = (c: X509Certificate): boolean => Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
    const trusted = this.current.cas.some((ca) => valid(ca) && peer.checkIssued(ca) && peer.verify(ca.publicKey));
    if (!trusted || !valid(peer)) return undefined;
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(peer.subject)?.[1];
    const emails = (peer.subjectAltName ?? '')
      .split(', ')
      .filter((n) => n.startsWith('email:'))
      .map((n) => n.slice('email:'.length));
    return { commonName: cn, emails };
  }
}
