/**
 * LIST and UIDL without an argument (listing.ts) written straight into chunk buffers, against the
 * plain string form of RFC 1939 §5/§7: every live message's "n value" line, then ".".
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { list, uidl, writeDecimal } from './listing.js';
import { Maildrop } from '../session/maildrop.js';
import { MessageList, type MaildropSnapshot, type MessageInfo } from '../storage/mail-store.js';
import type { CommandContext } from '../session/context.js';
import type { Command } from '../protocol/command.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 100);

async function run(maildrop: Maildrop, name: 'LIST' | 'UIDL'): Promise<{ status: string; body: string; chunks: number }> {
  let status = '';
  const parts: Buffer[] = [];
  const ctx = {
    state: { phase: 'transaction', maildrop },
    reply: (b: Buffer) => (status = b.toString('latin1')),
    sendBody: async (s: Buffer, body: AsyncIterable<Buffer>) => {
      status = s.toString('latin1');
      for await (const b of body) parts.push(Buffer.from(b)); // copied: chunks must stay valid after the yield
      return 0;
    },
  } as unknown as CommandContext;
  await (name === 'LIST' ? list : uidl).run(ctx, { name } as Command);
  return { status, body: Buffer.concat(parts).toString('latin1'), chunks: parts.length };
}

function reference(messages: readonly MessageInfo[], deleted: ReadonlySet<number>, value: (m: MessageInfo) => string): string {
  return messages.map((m, i) => (deleted.has(i + 1) ? '' : `${i + 1} ${value(m)}\r\n`)).join('') + '.\r\n';
}

const infoArb = fc.record({
  uid: fc.nat(),
  size: fc.oneof(fc.nat({ max: 1000 }), fc.maxSafeNat()),
  uidl: fc.option(fc.stringMatching(/^[\x21-\x7e]{1,70}$/), { nil: undefined }),
});

describe('LIST and UIDL listings', () => {
  it('writeDecimal writes any safe integer as String() does', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (v) => {
        const b = Buffer.alloc(20);
        assert.equal(b.toString('latin1', 0, writeDecimal(b, 0, v)), String(v));
      }),
    );
  });

  it('R-S4 R-S12 R-X11 listings equal the plain form, deleted messages left out, in any size', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(infoArb, { maxLength: 400 }), fc.array(fc.nat(), { maxLength: 30 }), async (infos, dels) => {
        const messages: MessageInfo[] = infos.map((m, i) => ({ id: `m${i}`, uid: m.uid, size: m.size, seen: false, ...(m.uidl === undefined ? {} : { uidl: m.uidl }) }));
        const maildrop = new Maildrop({ list: MessageList.from(messages), mailbox: 'x' } as unknown as MaildropSnapshot);
        const deleted = new Set<number>();
        for (const d of dels) {
          if (messages.length === 0) break;
          const n = (d % messages.length) + 1;
          if (!deleted.has(n)) maildrop.dele(n);
          deleted.add(n);
        }
        assert.equal((await run(maildrop, 'LIST')).body, reference(messages, deleted, (m) => String(m.size)));
        assert.equal((await run(maildrop, 'UIDL')).body, reference(messages, deleted, (m) => m.uidl ?? String(m.uid)));
      }),
      { numRuns: RUNS },
    );
  });

  it('a 200,000-message listing is streamed in bounded chunks', async () => {
    const messages: MessageInfo[] = Array.from({ length: 200_000 }, (_, i) => ({ id: `m${i}`, uid: 10_000_000 + i, size: 1000 + i, seen: false }));
    const maildrop = new Maildrop({ list: MessageList.from(messages), mailbox: 'x' } as unknown as MaildropSnapshot);
    const r = await run(maildrop, 'LIST');
    assert.equal(r.body, reference(messages, new Set(), (m) => String(m.size)));
    assert.ok(r.chunks > 20, `${r.chunks} chunks`);
    assert.equal(r.status, `+OK 200000 messages (${messages.reduce((n, m) => n + m.size, 0)} octets)\r\n`);
  });
});
