/**
 * The SASL mechanisms poplar speaks, by name (RFC 4422 names, upper case). Which are offered is
 * `auth.mechanisms`; whether one may run on a connection is its `usable()` plus R-S14's plaintext
 * policy for PLAIN and LOGIN.
 */
import { cramMd5 } from './cram-md5.js';
import { external } from './external.js';
import { gssapi } from './gssapi.js';
import { login } from './login.js';
import type { Mechanism } from './mechanism.js';
import { ntlm } from './ntlm.js';
import { oauthbearer, xoauth2 } from './oauth.js';
import { plain } from './plain.js';
import type { MechanismName } from './names.js';
import { scramSha256 } from './scram.js';

export const MECHANISMS: Readonly<Record<MechanismName, Mechanism> & Record<string, Mechanism | undefined>> = {
  PLAIN: plain,
  LOGIN: login,
  'CRAM-MD5': cramMd5,
  'SCRAM-SHA-256': scramSha256,
  OAUTHBEARER: oauthbearer,
  XOAUTH2: xoauth2,
  EXTERNAL: external,
  NTLM: ntlm,
  GSSAPI: gssapi,
};

export { MECHANISM_NAMES, type MechanismName } from './names.js';
