/**
 * R-X9 / R-S4 bounded memory per message of a maildrop's listing: what a process holds for a
 * settled 20,000-message Maildir with two sessions logged in (the store's uidlist cache and
 * listing, both snapshots, both sessions' Maildrop after STAT) stays under BOUND octets per
 * message. Measured in a child process run with --expose-gc: heap + external memory after full
 * collections, before the first open and with the sessions open. One object per message in the
 * listing (as before the compact MessageList: ~530–730 octets per message) fails it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAILDIR_STORE_MODULE, runNode } from '../helpers/node-snippet.js';

const MESSAGES = 20_000;
/** Octets per message; the compact listing holds ~170 (docs/benchmarks.md). */
const BOUND = 300;
const MAILDROP_MODULE = new URL('../../src/session/maildrop.js', import.meta.url).href;

describe('Maildir listing memory', () => {
  it('R-X9 R-S4 a settled 20,000-message listing held by two sessions costs under 300 octets per message', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'poplar-listing-memory-'));
    try {
      const out = await runNode(
        `
        import { mkdirSync, writeFileSync } from 'node:fs';
        const { MaildirStore } = await import(${JSON.stringify(MAILDIR_STORE_MODULE)});
        const { Maildrop } = await import(${JSON.stringify(MAILDROP_MODULE)});
        const root = ${JSON.stringify(join(dir, 'box'))};
        for (const d of ['new', 'cur', 'tmp']) mkdirSync(root + '/' + d, { recursive: true });
        for (let i = 0; i < ${MESSAGES}; i++) {
          writeFileSync(root + '/new/' + (1763726400 + i) + '.M' + (100000 + i) + 'P' + (20000 + i) + '.mail.example.org', 'Subject: ' + i + '\\n\\nbody\\n');
        }
        const used = () => { const m = process.memoryUsage(); return m.heapUsed + m.external; };
        const settle = () => { for (let i = 0; i < 3; i++) globalThis.gc(); return used(); };
        const store = new MaildirStore({ path: () => root });
        const plain = { exclusive: false };
        const before = settle();
        await (await store.open('box', plain)).release();
        await new Promise((r) => setTimeout(r, 300)); // past the dirty window: the listing is cached
        const a = await store.open('box', plain);
        const b = await store.open('box', plain);
        const sessions = [new Maildrop(a), new Maildrop(b)];
        const stat = sessions.map((m) => m.stat().count);
        const held = settle() - before;
        console.log(JSON.stringify({ stat, perMessage: held / ${MESSAGES} }));
        await a.release();
        await b.release();
        await store.close();
        `,
        ['--expose-gc'],
      );
      const { stat, perMessage } = JSON.parse(out) as { stat: number[]; perMessage: number };
      assert.deepEqual(stat, [MESSAGES, MESSAGES], 'both sessions see every message');
      assert.ok(perMessage < BOUND, `${perMessage.toFixed(0)} octets per message held, bound ${BOUND}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
