/**
 * Issue #12: client-supplied strings reach the JSON log with bidi and other control characters
 * escaped (R-X13), over a real socket to a real `poplar serve`: the raw line a terminal, grep or
 * fail2ban sees holds none of them, and neither does the parsed value a log viewer shows.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Pop3Client } from '../helpers/pop3-client.js';
import { waitFor } from '../helpers/wait.js';
import { startPoplar } from '../helpers/poplar-process.js';

/** Bidi controls (U+202A–U+202E, U+2066–U+2069, U+200E/F, U+061C), C0 other than tab/LF, DEL, C1, U+2028/9. */
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

describe('log escaping', () => {
  it('R-X13 a user name with U+202E and control characters is logged escaped in the raw line and in the parsed value', { timeout: 30_000 }, async () => {
    // Regression: a SASL user name with a right-to-left override (and ESC, C1, LRI) was written to the
    // log as it came, so a terminal or log viewer showed the line reordered or recoloured.
    const p = await startPoplar({ overrides: ['auth.failure_delay=0'] });
    try {
      const user = 'eve\u202Etxt.exe\u001b[31m\u0085\u2066x\r';
      const c = await Pop3Client.connect(p.pop3Port);
      const plain = Buffer.from(`\0${user}\0wrong`).toString('base64');
      assert.match(await c.cmd(`AUTH PLAIN ${plain}`), /^-ERR/);
      await c.cmd('QUIT');
      await waitFor(() => p.output().includes('"event":"auth_failed"'));
      const raw = p.output().split('\n').find((l) => l.includes('"event":"auth_failed"'))!;
      assert.doesNotMatch(raw, UNSAFE, 'no raw control character in the line');
      const logged = JSON.parse(raw) as Record<string, unknown>;
      assert.equal(logged['user'], 'eve\\u202etxt.exe\\u001b[31m\\u0085\\u2066x\\r');
      assert.doesNotMatch(String(logged['user']), UNSAFE);
    } finally {
      await p.cleanup();
    }
  });
});
