/**
 * The verified-login cache (auth.cache_ttl, auth/login-cache.ts) on real sockets: repeated
 * password logins succeed through USER/PASS and AUTH PLAIN, and with entries cached a wrong
 * password still fails exactly as an unknown user (R-S13). What is cached and when it is
 * bypassed, and that a failure with a cached success does the same work as an unknown user's,
 * is proven in src/auth/authenticator.test.ts; the times are measured by bench/auth-timing.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Pop3Client } from '../helpers/pop3-client.js';
import { withServer } from '../helpers/test-server.js';

const CACHE = { operations: { loginCache: { ttlMs: 3_600_000, maxEntries: 100 } } };
const plain = (user: string, pw: string): string => Buffer.from(`\0${user}\0${pw}`).toString('base64');

describe('login cache', () => {
  it('R-S9 R-S13 with the cache on, repeated USER/PASS and AUTH PLAIN logins succeed and a wrong password then fails as an unknown user does', async () => {
    await withServer(CACHE, async (t) => {
      for (let i = 0; i < 2; i++) {
        const c = await Pop3Client.connect(t.port);
        assert.match(await c.login('alice', 'wonderland'), /^\+OK/);
        assert.match(await c.cmd('QUIT'), /^\+OK/);
        c.close();
      }
      const p = await Pop3Client.connect(t.port);
      assert.match(await p.cmd(`AUTH PLAIN ${plain('alice', 'wonderland')}`), /^\+OK/);
      p.close();
      const c = await Pop3Client.connect(t.port);
      const wrong = await c.login('alice', 'wonderlanD');
      const unknown = await c.login('ghost', 'wonderlanD');
      assert.equal(wrong, '-ERR [AUTH] Authentication failed');
      assert.equal(unknown, wrong);
      const again = await Pop3Client.connect(t.port);
      assert.match(await again.cmd(`AUTH PLAIN ${plain('alice', 'wonderlanD')}`), /^-ERR/);
      again.close();
      c.close();
      assert.ok(!t.logText().includes('wonderland'), 'no password logged');
    });
  });
});
