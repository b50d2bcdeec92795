/**
 * The client side of `retr` for a share of its users: sessions that log in, LIST, RETR every
 * message (each checked byte for byte as it arrives, RetrCheck) and QUIT. Runs in the main thread
 * or, with `--threads N` > 1, in a worker thread per share, so receiving and checking can use
 * more than one core and the bench client does not cap the figures it measures.
 *
 * Worker protocol: workerData is a RetrJob; the worker warms up (one unmeasured pass per user,
 * which also builds its expected wire forms) and posts 'ready'; on { durationMs } it loops
 * until then and posts { bytes, messages } or { error }.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Expected } from '../messages.js';
import { Pop3Client, type Target } from '../pop3.js';
import { RetrCheck } from '../retr-check.js';
import { boxIds } from './common.js';

export interface RetrJob {
  readonly target: Target;
  readonly password: string;
  readonly seed: number;
  readonly size: number;
  readonly box: string;
  readonly messages: number;
  readonly users: readonly string[];
}

export interface RetrCount {
  bytes: number;
  messages: number;
}

export type WorkerReply = { ready: true } | RetrCount | { error: string };

export class RetrUsers {
  private readonly expected: Expected;
  private readonly ids: Set<string>;

  constructor(private readonly job: RetrJob) {
    this.expected = new Expected(job.seed, () => job.size);
    this.ids = new Set(boxIds(job.box, job.messages));
  }

  /** One pass per user, not counted. */
  async warmUp(): Promise<void> {
    await Promise.all(this.job.users.map((u) => this.pass(u, this.check())));
  }

  /** Every user's sessions, back to back, until `durationMs` from now; the first failure rejects. */
  async run(durationMs: number): Promise<RetrCount> {
    const deadline = performance.now() + durationMs;
    const total: RetrCount = { bytes: 0, messages: 0 };
    await Promise.all(
      this.job.users.map(async (u) => {
        const check = this.check();
        while (performance.now() < deadline) {
          const r = await this.pass(u, check);
          total.bytes += r.bytes;
          total.messages += r.messages;
        }
      }),
    );
    return total;
  }

  /** Only this box's messages are accepted. */
  private check(): RetrCheck {
    return new RetrCheck((id) => (this.ids.has(id) ? this.expected.wire(id) : undefined));
  }

  /** One session: LIST, RETR every message (checked), QUIT. */
  private async pass(user: string, check: RetrCheck): Promise<RetrCount> {
    const p = await Pop3Client.open(this.job.target);
    try {
      await p.login(user, this.job.password);
      const list = (await p.multi('LIST')).toString('latin1').split('\r\n').filter((l) => l !== '');
      let bytes = 0;
      for (const line of list) {
        const [n, octets] = line.split(' ').map(Number);
        check.reset(`${user} RETR ${n}`, octets!);
        await p.retrChecked(n!, check);
        bytes += check.expected!.octets;
      }
      await p.quit();
      return { bytes, messages: list.length };
    } finally {
      p.destroy();
    }
  }
}

if (!isMainThread && parentPort !== null && (workerData as { retr?: RetrJob } | undefined)?.retr !== undefined) {
  const port = parentPort;
  const users = new RetrUsers((workerData as { retr: RetrJob }).retr);
  const send = (m: WorkerReply): void => port.postMessage(m);
  const failed = (err: unknown): void => send({ error: err instanceof Error ? err.message : String(err) });
  users.warmUp().then(() => send({ ready: true }), failed);
  port.once('message', (m: { durationMs: number }) => {
    users.run(m.durationMs).then(send, failed);
  });
}
