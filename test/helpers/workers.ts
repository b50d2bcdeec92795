/**
 * R-X16: reaching a chosen worker of a `poplar serve` with several. Which worker accepts a
 * connection is the kernel's choice (the workers share one listening socket), and a worker that
 * has just started can lose every race to a warm one; so the other workers are stopped (SIGSTOP)
 * for the moment of one connection, and only a wanted one can accept it. The APOP banner of the
 * greeting (`<pid.clock@host>`, with `auth.apop = true`) names the worker that answered.
 */
import { Pop3Client } from './pop3-client.js';
import type { PoplarProcess } from './poplar-process.js';

export const pidOf = (greeting: string): number => Number(/<(\d+)\./.exec(greeting)?.[1] ?? 0);

/** The pids of every worker that became ready, in order, the dead ones too. */
export const workerPids = (p: PoplarProcess): number[] => p.events('worker_ready').map((e) => Number(e['pid']));

/** The workers ready and not reported dead. */
export function liveWorkerPids(p: PoplarProcess): number[] {
  const gone = new Set(p.events('worker_exit').map((e) => Number(e['pid'])));
  return workerPids(p).filter((pid) => !gone.has(pid));
}

/** A connection greeted by a worker for which `want(pid)` holds; the other workers are paused meanwhile. */
export async function connectTo(p: PoplarProcess, want: (pid: number) => boolean): Promise<{ c: Pop3Client; pid: number }> {
  const live = liveWorkerPids(p);
  if (!live.some(want)) throw new Error(`no live worker is the one wanted (live: ${live.join(', ')})`);
  const others = live.filter((pid) => !want(pid));
  for (const pid of others) process.kill(pid, 'SIGSTOP');
  let c: Pop3Client | undefined;
  try {
    c = await Pop3Client.connect(p.pop3Port);
    const pid = pidOf(await c.greeting);
    if (!want(pid)) throw new Error(`greeted by worker ${pid}, not a wanted one (live: ${live.join(', ')})`);
    return { c, pid };
  } catch (err) {
    c?.close();
    throw err;
  } finally {
    for (const pid of others) process.kill(pid, 'SIGCONT');
  }
}
