/**
 * Bearer tokens for OAUTHBEARER and XOAUTH2 (R-X4), verified as JWTs (RFC 7519) with `jose`: the
 * signature against the keys of the issuer named in the token (a JWKS file, or a URL fetched and
 * cached by jose), then `iss`, `exp` (required: a token without one would never expire), `nbf`
 * when present, and `aud` when an audience is configured. Only
 * asymmetric algorithms are accepted, so a token signed with a public key as HMAC secret fails.
 * A JWKS URL must be https (http only to localhost); jose caches it and refetches for a new `kid`.
 * The user is the value of the configured claim (e.g. `email` or `preferred_username`).
 */
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, jwtVerify, type JWTVerifyGetKey } from 'jose';

const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

export interface IssuerSpec {
  /** The `iss` claim tokens carry. */
  readonly issuer: string;
  /** `https://…` JWKS URL, or a path to a JWKS file. */
  readonly jwks: string;
}

export interface TokenVerifierOptions {
  readonly issuers: readonly IssuerSpec[];
  /** Required `aud`; empty: not checked. */
  readonly audience: string;
  /** Claim holding the poplar user name. */
  readonly userClaim: string;
}

export type TokenResult = { readonly ok: true; readonly user: string } | { readonly ok: false; readonly reason: string };

/** A JWKS URL: https, or plain http only to this host (whoever can rewrite it can mint tokens). */
function jwksUrl(text: string): URL {
  const url = new URL(text);
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new Error(`JWKS URL ${text} must use https (plain http is allowed only to localhost)`);
  }
  return url;
}

export class TokenVerifier {
  private keys = new Map<string, JWTVerifyGetKey>();

  private constructor(private readonly opts: TokenVerifierOptions) {}

  static async create(opts: TokenVerifierOptions): Promise<TokenVerifier> {
    const v = new TokenVerifier(opts);
    await v.reload();
    return v;
  }

  /** Re-reads JWKS files (SIGHUP, `poplar reload`); URLs are refetched by jose on unknown key ids. */
  async reload(): Promise<void> {
    const keys = new Map<string, JWTVerifyGetKey>();
    for (const { issuer, jwks } of this.opts.issuers) {
      if (/^https?:\/\//.test(jwks)) keys.set(issuer, createRemoteJWKSet(jwksUrl(jwks)));
      else keys.set(issuer, createLocalJWKSet(JSON.parse(await readFile(jwks, 'utf8'))));
    }
    this.keys = keys;
  }

  async verify(token: string): Promise<TokenResult> {
    let iss: string | undefined;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      return { ok: false, reason: 'not a JWT' };
    }
    const keys = iss === undefined ? undefined : this.keys.get(iss);
    if (keys === undefined) return { ok: false, reason: 'unknown issuer' };
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: iss,
        algorithms: ALGORITHMS,
        requiredClaims: ['exp'],
        ...(this.opts.audience === '' ? {} : { audience: this.opts.audience }),
      });
      const user = payload[this.opts.userClaim];
      if (typeof user !== 'string' || user === '') return { ok: false, reason: `no ${this.opts.userClaim} claim` };
      return { ok: true, user };
    } catch (e) {
      return { ok: false, reason: (e as { code?: string }).code ?? 'invalid token' };
    }
  }
}
