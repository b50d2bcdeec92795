/**
 * Reads a PROXY protocol header (./proxy-protocol.ts) from the start of a raw socket, before any
 * POP3 or TLS byte, within a time limit. The bytes read past the header are returned (`rest`):
 * the listener hands them on (socket.unshift for plain POP3, withPrefix for TLS), so the session
 * or the handshake reads them as if the header had never been there.
 */
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { parseProxyHeader, type ProxyAddress } from './proxy-protocol.js';

/** A proxy sends its header at once; a peer that does not is not a proxy we trust. */
const PROXY_HEADER_TIMEOUT_MS = 5000;

export type ProxyOutcome =
  | { readonly ok: true; readonly source: ProxyAddress | undefined; readonly rest: Buffer }
  | { readonly ok: false; readonly reason: string };

export function readProxyHeader(socket: Socket, timeoutMs = PROXY_HEADER_TIMEOUT_MS): Promise<ProxyOutcome> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const done = (outcome: ProxyOutcome): void => {
      clearTimeout(timer);
      socket.off('data', onData).off('close', onClose).off('error', onClose);
      socket.pause();
      resolve(outcome);
    };
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const r = parseProxyHeader(buf);
      if (r.kind === 'incomplete') return;
      if (r.kind === 'invalid') return done({ ok: false, reason: r.reason });
      done({ ok: true, source: r.kind === 'proxied' ? r.source : undefined, rest: buf.subarray(r.consumed) });
    };
    const onClose = (): void => done({ ok: false, reason: 'closed before the PROXY header' });
    const timer = setTimeout(() => done({ ok: false, reason: 'no PROXY header in time' }), timeoutMs);
    socket.on('data', onData).on('close', onClose).on('error', onClose);
  });
}

/**
 * The socket as a stream that first yields `prefix` (bytes read past a PROXY header): a TLS
 * handshake over it sees the client's first bytes, which socket.unshift() cannot give a
 * TLSSocket (it reads the socket's handle directly, not its JS buffer).
 */
export function withPrefix(socket: Socket, prefix: Buffer): Duplex {
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb);
    },
    final(cb) {
      socket.end(cb);
    },
    destroy(err, cb) {
      socket.destroy(err ?? undefined);
      cb(err);
    },
  });
  if (prefix.length > 0) duplex.push(prefix);
  socket.on('data', (d: Buffer) => {
    if (!duplex.push(d)) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('close', () => duplex.destroy());
  socket.on('error', (e) => duplex.destroy(e));
  return duplex;
}
