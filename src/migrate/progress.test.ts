/** R-X15 progress display: a redrawn bar on a terminal, plain lines elsewhere. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Progress } from './progress.js';

function sink(isTTY: boolean): NodeJS.WriteStream & { text: string } {
  const s = { text: '', isTTY, write(chunk: string) { s.text += chunk; return true; } };
  return s as unknown as NodeJS.WriteStream & { text: string };
}

it('R-X15 on a terminal the progress is one bar redrawn in place', () => {
  const out = sink(true);
  const p = new Progress('import alice', 4, out);
  for (let i = 0; i < 4; i++) p.tick(10);
  p.finish();
  assert.ok(out.text.startsWith('\r['), JSON.stringify(out.text));
  assert.ok(out.text.endsWith(`\r[${'#'.repeat(30)}] import alice: 4 of 4 messages, 40 octets\n`), JSON.stringify(out.text));
  assert.equal(out.text.split('\n').length, 2, 'one line in the end');
});

it('R-X15 without a terminal, progress is plain lines every 100 messages and a final one', () => {
  const out = sink(false);
  const p = new Progress('export bob', undefined, out);
  for (let i = 0; i < 250; i++) p.tick(1);
  p.finish();
  assert.equal(out.text, 'export bob: 100 messages, 100 octets\nexport bob: 200 messages, 200 octets\nexport bob: 250 messages, 250 octets done\n');
  assert.ok(!out.text.includes('\r'));
});
