/**
 * SASLprep (RFC 4013), the stringprep profile SCRAM (RFC 5802 §2.2) and PLAIN (RFC 4616 §2) name
 * for user names and passwords: map non-ASCII spaces to SPACE and "commonly mapped to nothing"
 * characters to nothing, normalise with NFKC, refuse prohibited output (RFC 3454 C.1.2–C.9) and
 * apply the bidirectional-text rule (RFC 3454 §6) — with RFC 3454's own tables, from
 * `@mongodb-js/saslprep`. Unassigned code points are allowed: a login's name and password are
 * "queries" (RFC 3454 §7), and a password with a newer character (an emoji) must keep working.
 * Returns undefined when the string is prohibited; the callers then use it as it is.
 */
import prep from '@mongodb-js/saslprep';

export function saslprep(input: string): string | undefined {
  try {
    return prep(input, { allowUnassigned: true });
  } catch {
    return undefined;
  }
}
