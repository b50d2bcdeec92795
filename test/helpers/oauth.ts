/**
 * A test OAuth issuer: an ES256 key pair, its public JWKS in a temp file, a TokenVerifier that
 * trusts it, and a minter of signed JWTs (jose). A second, untrusted key signs forged tokens.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { TokenVerifier } from '../../src/auth/sasl/token-verifier.js';

export const ISSUER = 'https://id.poplar.test';
export const AUDIENCE = 'pop3.poplar.test';

export interface TestIssuer {
  readonly verifier: TokenVerifier;
  /** A token for `user` (claim `email`), valid for 5 minutes unless `claims` says otherwise. */
  token(user: string, claims?: JWTPayload & { expiresIn?: string }): Promise<string>;
  /** A token with the same claims signed by a key the server does not trust. */
  forged(user: string): Promise<string>;
}

async function sign(key: CryptoKey, user: string, claims: JWTPayload & { expiresIn?: string } = {}): Promise<string> {
  const { expiresIn, ...rest } = claims;
  const jwt = new SignJWT({ email: user, ...rest })
    .setProtectedHeader({ alg: 'ES256', kid: 'test-key' })
    .setIssuer(rest.iss ?? ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt();
  // An explicit `exp` claim (an expired token) is kept; otherwise the token lives `expiresIn`.
  return (rest.exp === undefined ? jwt.setExpirationTime(expiresIn ?? '5m') : jwt).sign(key);
}

export async function testIssuer(): Promise<TestIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const other = await generateKeyPair('ES256');
  const dir = await mkdtemp(join(tmpdir(), 'poplar-jwks-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const jwks = join(dir, 'jwks.json');
  await writeFile(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'test-key', alg: 'ES256', use: 'sig' }] }));
  const verifier = await TokenVerifier.create({ issuers: [{ issuer: ISSUER, jwks }], audience: AUDIENCE, userClaim: 'email' });
  return {
    verifier,
    token: (user, claims) => sign(privateKey, user, claims),
    forged: (user) => sign(other.privateKey, user),
  };
}
