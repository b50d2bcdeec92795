/**
 * The system calls a real poplar process makes, in the order they completed, recorded by strace
 * (Debian's `strace`): the test's window on durability (R-X6). A crash test cannot see a missing
 * fsync (SIGKILL keeps the page cache), but the order of fsync, rename and the acknowledgement
 * written to the client shows it plainly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export interface Syscall {
  readonly pid: number;
  readonly name: string;
  /** The arguments as strace printed them (`-y`: file descriptors carry their paths). */
  readonly args: string;
  readonly ret: string;
}

/** The strace options every recording uses: threads followed, fds with paths, short strings. */
export function straceArgs(out: string, calls: readonly string[]): string[] {
  return ['-f', '-y', '-s', '64', '-e', `trace=${calls.join(',')}`, '-o', out];
}

/**
 * Parses strace -f output into completed calls, joining `<unfinished ...>` with its `resumed`
 * half (the call counts where it completed). A call still unfinished when strace detached (a
 * write whose bytes the peer already read, say) counts where it started, with `ret` '?'.
 */
export function parseTrace(text: string): Syscall[] {
  const out: (Syscall | undefined)[] = [];
  const pending = new Map<number, { name: string; args: string; at: number }>();
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (m === null) continue;
    const pid = Number(m[1]);
    const rest = m[2]!;
    const unfinished = /^(\w+)\((.*) <unfinished \.\.\.>$/.exec(rest);
    if (unfinished !== null) {
      pending.set(pid, { name: unfinished[1]!, args: unfinished[2]!, at: out.length });
      out.push({ pid, name: unfinished[1]!, args: unfinished[2]!, ret: '?' });
      continue;
    }
    const resumed = /^<\.\.\. (\w+) resumed>(.*)\)\s+= (.*)$/.exec(rest);
    if (resumed !== null) {
      const p = pending.get(pid);
      pending.delete(pid);
      if (p !== undefined) out[p.at] = undefined;
      out.push({ pid, name: resumed[1]!, args: (p?.args ?? '') + resumed[2]!, ret: resumed[3]! });
      continue;
    }
    const full = /^(\w+)\((.*)\)\s+= (.*)$/.exec(rest);
    if (full !== null) out.push({ pid, name: full[1]!, args: full[2]!, ret: full[3]! });
  }
  return out.filter((c): c is Syscall => c !== undefined);
}

/** Reads and parses a finished recording. */
export async function readTrace(path: string): Promise<Syscall[]> {
  return parseTrace(await readFile(path, 'utf8'));
}

/** Attaches to every thread of a running process; `stop()` detaches and waits for strace to end. */
export async function attach(pid: number, out: string, calls: readonly string[]): Promise<{ stop(): Promise<void> }> {
  const child: ChildProcess = spawn('strace', [...straceArgs(out, calls), '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const ended = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // strace says "Process N attached with T threads" on stderr once every thread is traced.
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (/attached/.test(err)) resolve();
      else if (child.exitCode !== null) reject(new Error(`strace could not attach to ${pid}: ${err}`));
      else setTimeout(check, 10);
    };
    check();
  });
  return {
    async stop() {
      child.kill('SIGINT');
      await ended;
    },
  };
}
