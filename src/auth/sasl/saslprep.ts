/**
 * SASLprep (RFC 4013), the stringprep profile SCRAM (RFC 5802 §2.2) and PLAIN (RFC 4616 §2) name
 * for user names and passwords: map non-ASCII spaces to SPACE and "commonly mapped to nothing"
 * characters to nothing (RFC 3454 B.1, C.1.2), normalise with NFKC, then refuse prohibited
 * output (controls, private use, surrogates, non-characters, tagging and change-display
 * characters; RFC 3454 C.2–C.9). The bidirectional-text check (RFC 3454 §6) is applied with the
 * Unicode script properties JavaScript offers: a string mixing right-to-left and left-to-right
 * letters is refused. Returns undefined when the string is prohibited.
 */

const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/g;
const MAPPED_TO_NOTHING = /[\u00ad\u034f\u1806\u180b-\u180d\u200b-\u200d\u2060\ufe00-\ufe0f\ufeff]/g;
// C.2 controls, C.3 private use, C.4 non-characters, C.5 surrogates, C.6–C.9.
const PROHIBITED =
  /[\p{Cc}\p{Co}\p{Cs}\u0340\u0341\u200e\u200f\u202a-\u202e\u206a-\u206f\ufff9-\ufffd\u2ff0-\u2ffb\u{e0001}\u{e0020}-\u{e007f}\ufdd0-\ufdef\ufffe\uffff\u06dd\u070f\u180e\u2028\u2029\u2061-\u2063]/u;
const RTL = /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}]/u;
const LTR_LETTER = /[\p{L}](?<![\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}])/u;

export function saslprep(input: string): string | undefined {
  const mapped = input.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '');
  const out = mapped.normalize('NFKC');
  if (PROHIBITED.test(out)) return undefined;
  if (RTL.test(out)) {
    // RFC 3454 §6: no LTR letters with RTL ones, and RTL strings start and end with an RTL character.
    if (LTR_LETTER.test(out)) return undefined;
    if (!RTL.test(out[0]!) || !RTL.test(out[out.length - 1]!)) return undefined;
  }
  return out;
}
