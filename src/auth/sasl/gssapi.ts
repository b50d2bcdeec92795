/**
 * GSSAPI (RFC 4752) with Kerberos 5, R-X20: the client's AP-REQ is accepted with the service key
 * from the keytab (the acceptor, gssapi-native.ts, over MIT's libgssapi_krb5), then the
 * security-layer negotiation of RFC 4752 §3.1:
 *
 *   C: AUTH GSSAPI [token]         S: + [AP-REP, when the client asked for mutual authentication]
 *   C: (empty)                     S: + wrap(0x01 00 00 00)   only "no security layer", max size 0
 *   C: wrap(0x01 size authzid)     S: +OK / -ERR
 *
 * poplar offers no integrity or confidentiality layer (POP3 has TLS for that), so the offer is
 * the bit "no security layer" with a maximum message size of 0, and a client that picks anything
 * else fails. The principal `name@REALM` is the user `name` when REALM is one of
 * `auth.gssapi_realms`; other realms, principals with an instance (`carol/admin@REALM`) and names
 * the directory does not know are refused. A non-empty authorization identity is handed to the
 * master-user decision (R-X14), as PLAIN does. R-X9: the address's penalty is served before the
 * ticket is checked (the principal is known only after), the user's by the directory look-up.
 */
import type { UserRecord } from '../directory.js';
import { decodeUtf8, failure, type ExchangeEnv, type Mechanism, type SaslExchange, type SaslStep } from './mechanism.js';

/** One acceptor security context (one AUTH exchange). */
export interface GssContext {
  /** gss_accept_sec_context on the client's token; rejects with `serverError` set when the service credential is unusable. */
  step(token: Buffer): Promise<{ complete: boolean; output: Buffer; principal?: string }>;
  /** gss_wrap without confidentiality, on a complete context. */
  wrap(data: Buffer): Buffer;
  /** gss_unwrap, on a complete context; throws on a token that does not verify. */
  unwrap(token: Buffer): Buffer;
  /** Frees the context now (otherwise at garbage collection). */
  dispose(): void;
}

/** The configured acceptor (`auth.gssapi_*`). */
export interface GssapiAcceptor {
  /** `auth.gssapi_realms`: the realms whose principals are users. */
  readonly realms: readonly string[];
  /** Whether the keytab can be read now (GSSAPI is advertised only then). */
  usable(): boolean;
  context(): GssContext;
}

/** RFC 4752 §3.1 security layer bits. */
const LAYER_NONE = 0x01;

/** Maps a principal to a user name: `name@REALM` with REALM in `realms`, no instance, no escapes. */
export function principalUser(principal: string, realms: readonly string[]): { user: string } | { reason: string } {
  if (principal.includes('\\')) return { reason: 'principal with escaped characters' };
  const at = principal.lastIndexOf('@');
  if (at <= 0) return { reason: 'principal without a realm' };
  const name = principal.slice(0, at);
  const realm = principal.slice(at + 1);
  if (!realms.includes(realm)) return { reason: `realm ${realm} not accepted` };
  if (name.includes('/')) return { reason: 'principal with an instance' };
  if (name.includes('@')) return { reason: 'malformed principal' };
  return { user: name };
}

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

class GssapiExchange implements SaslExchange {
  private stage: 'start' | 'context' | 'layer' | 'authz' | 'done' = 'start';
  private readonly ctx: GssContext;
  private principal = '';
  private user = '';
  private record: UserRecord | undefined;

  constructor(private readonly env: ExchangeEnv, acceptor: GssapiAcceptor) {
    this.ctx = acceptor.context();
  }

  async step(response: Buffer | undefined): Promise<SaslStep> {
    let result: SaslStep | undefined;
    try {
      result = await this.next(response);
      return result;
    } finally {
      if (result === undefined || result.kind !== 'challenge') {
        this.stage = 'done';
        this.ctx.dispose();
      }
    }
  }

  private async next(response: Buffer | undefined): Promise<SaslStep> {
    switch (this.stage) {
      case 'start':
        this.stage = 'context';
        // R-X9: the address's penalty before any ticket is looked at.
        await this.env.penalty(undefined);
        // RFC 4422 §5: without an initial response the server sends an empty challenge.
        if (response === undefined) return { kind: 'challenge', data: Buffer.alloc(0) };
        return this.accept(response);
      case 'context':
        return this.accept(response);
      case 'layer':
        // The client's (empty) answer to the AP-REP; then the offer: no security layer, max size 0.
        return this.offer();
      case 'authz':
        return this.authorize(response);
      default:
        return failure('GSSAPI exchange already finished', undefined, true);
    }
  }

  private async accept(token: Buffer | undefined): Promise<SaslStep> {
    if (token === undefined || token.length === 0) return failure('empty GSSAPI token', undefined, true);
    let r: Awaited<ReturnType<GssContext['step']>>;
    try {
      r = await this.ctx.step(token);
    } catch (e) {
      // The service credential itself is unusable (no keytab, no key for the service): a server
      // error, logged by the session with the reason; the client gets -ERR [SYS/TEMP].
      if ((e as { serverError?: boolean }).serverError === true) throw new Error(`GSSAPI acceptor: ${messageOf(e)}`, { cause: e });
      return failure(messageOf(e));
    }
    if (!r.complete) return { kind: 'challenge', data: r.output };
    this.principal = r.principal ?? '';
    const mapped = principalUser(this.principal, this.env.gssapi?.realms ?? []);
    if ('reason' in mapped) return failure(mapped.reason, this.principal);
    this.user = mapped.user;
    this.record = await this.env.lookup(mapped.user);
    if (this.record === undefined) return failure(`principal ${this.principal} has no user`, mapped.user);
    this.stage = 'layer';
    // Mutual authentication: the AP-REP goes first, the client answers with an empty response.
    if (r.output.length > 0) return { kind: 'challenge', data: r.output };
    return this.offer();
  }

  private offer(): SaslStep {
    this.stage = 'authz';
    return { kind: 'challenge', data: this.ctx.wrap(Buffer.from([LAYER_NONE, 0, 0, 0])) };
  }

  private authorize(token: Buffer | undefined): SaslStep {
    if (token === undefined || token.length === 0) return failure('empty security layer message', this.user, true);
    let message: Buffer;
    try {
      message = this.ctx.unwrap(token);
    } catch (e) {
      return failure(messageOf(e), this.user);
    }
    if (message.length < 4) return failure('security layer message too short', this.user, true);
    if (message[0] !== LAYER_NONE) return failure(`client chose security layer 0x${message[0]!.toString(16)}, only none is offered`, this.user);
    const authzid = decodeUtf8(message.subarray(4));
    if (authzid === undefined || authzid.includes('\0')) return failure('invalid authorization identity', this.user, true);
    const record = this.record!;
    if (authzid === '' || authzid === record.name || authzid === this.principal) return { kind: 'success', record };
    return { kind: 'success', record, authzid };
  }
}

export const gssapi: Mechanism = {
  name: 'GSSAPI',
  plaintext: false,
  usable: (env) => env.gssapi !== undefined && env.gssapi.usable(),
  start(env): SaslExchange {
    return new GssapiExchange(env, env.gssapi!);
  },
};
