/**
 * The trace fields a delivery prepends (RFC 5321 §4.4, RFC 9228): `Return-Path` with the envelope
 * sender, `Delivered-To` with the envelope recipient, and a `Received` line naming the client,
 * this host, the protocol, a delivery id and the time. They use the line ending the message's
 * first line uses (CRLF over LMTP; often bare LF from a pipe), so the stored file stays uniform.
 */
import { rfc5322Date } from '../policy/quota.js';

export interface Envelope {
  /** MAIL FROM (without brackets); '' for the null sender (bounces). */
  readonly sender: string;
  /** The RCPT TO address this copy is for. */
  readonly recipient: string;
  readonly protocol: 'LMTP' | 'local';
  /** LHLO name and address of the client, for LMTP. */
  readonly heloName?: string;
  readonly remoteAddress?: string;
}

/** Removes what could break a header line: control characters and angle brackets. */
function clean(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f<>]/g, '');
}

export function traceHeaders(env: Envelope, at: { id: string; host: string; now: Date }, message: Buffer): Buffer {
  const lf = message.indexOf(0x0a);
  const eol = lf > 0 && message[lf - 1] === 0x0d ? '\r\n' : lf >= 0 ? '\n' : '\r\n';
  const from =
    env.protocol === 'LMTP'
      ? `from ${clean(env.heloName ?? 'unknown')} ([${clean(env.remoteAddress ?? 'unknown').replace(/^\[|\]$/g, '')}])${eol}\t`
      : '';
  const lines = [
    `Return-Path: <${clean(env.sender)}>`,
    `Delivered-To: ${clean(env.recipient)}`,
    `Received: ${from}by ${clean(at.host)} (poplar) with ${env.protocol} id ${at.id}${eol}\tfor <${clean(env.recipient)}>; ${rfc5322Date(at.now)}`,
  ];
  return Buffer.from(lines.join(eol) + eol, 'utf8');
}
