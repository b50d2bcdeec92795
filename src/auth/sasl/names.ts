/** The SASL mechanism names poplar implements (RFC 4422 names, upper case); see sasl/index.ts. */
export const MECHANISM_NAMES = ['PLAIN', 'LOGIN', 'CRAM-MD5', 'SCRAM-SHA-256', 'OAUTHBEARER', 'XOAUTH2', 'EXTERNAL', 'NTLM', 'GSSAPI'] as const;
export type MechanismName = (typeof MECHANISM_NAMES)[number];
