/**
 * R-X13: Prometheus metrics and the health check over HTTP. The exposition must pass
 * `promtool check metrics` (Debian's prometheus package, installed by .ci/run), and the counters
 * must move with real sessions.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Metrics } from '../../src/observability/metrics.js';
import { startOpsServer } from '../../src/observability/http.js';
import { channels } from '../../src/observability/channels.js';
import { needProgram } from '../helpers/external.js';

function promtool(text: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', () => reject(new Error('promtool is not installed: apt-get install prometheus')));
    p.on('close', (code) => resolve({ code: code ?? 1, out }));
    p.stdin.end(text);
  });
}

it('R-X13 /metrics passes promtool check metrics and counts what is published; /health answers', { skip: needProgram('promtool', 'prometheus') }, async () => {
  const metrics = new Metrics();
  let healthy = true;
  const ops = await startOpsServer({ host: '127.0.0.1', port: 0, registry: metrics.registry, health: () => ({ ok: healthy, sessions: 0 }) });
  try {
    channels.sessionOpen.publish({ ip: '127.0.0.1', tls: false });
    channels.login.publish({ result: 'failure', mechanism: 'USER' });
    channels.login.publish({ result: 'success', mechanism: 'USER' });
    channels.command.publish({ command: 'RETR', ok: true, seconds: 0.002 });
    channels.sessionClose.publish({ reason: 'quit', bytesOut: 1234, retr: 1, dele: 0 });
    channels.delivery.publish({ result: 'delivered', bytes: 500, seconds: 0.003 });
    const base = `http://127.0.0.1:${ops.address().port}`;
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /^poplar_logins_total\{result="failure",mechanism="USER"\} 1$/m);
    assert.match(text, /^poplar_bytes_sent_total 1234$/m);
    assert.match(text, /^poplar_sessions_active 0$/m);
    assert.match(text, /^poplar_command_duration_seconds_count\{command="RETR"\} 1$/m);
    assert.match(text, /^poplar_deliveries_total\{result="delivered"\} 1$/m);
    const check = await promtool(text);
    assert.equal(check.code, 0, check.out);
    const h = await fetch(`${base}/health`);
    assert.equal(h.status, 200);
    assert.equal(((await h.json()) as { status: string }).status, 'ok');
    healthy = false;
    assert.equal((await fetch(`${base}/health`)).status, 503);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  } finally {
    metrics.close();
    await ops.close();
  }
});
