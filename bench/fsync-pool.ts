/**
 * `node dist/bench/fsync-pool.js`: does libuv's thread pool size limit Maildir deliveries? Each
 * "delivery" here is the file work of one (maildir-deliver.ts, maildir-maildrop.ts
 * commitDeliveries): create a file in tmp/, write 4 KiB, fsync, close, rename into new/, then
 * fsync new/ beside an append + fdatasync of a per-maildrop record file. K loops deliver at once,
 * each to its own maildrop, for --seconds; the run is repeated in a child process per
 * UV_THREADPOOL_SIZE (the pool size is fixed at its first use) and per K, alternating, --rounds
 * times. Prints deliveries/s and CPU-ms per delivery; nothing asserted. No server, no sockets:
 * only the disk's flushes and the pool's hand-offs.
 *
 *   node dist/bench/fsync-pool.js --pools 4,8,32 --concurrency 1,8,32 --seconds 3 --rounds 2 --dir /tmp
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, open, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from './args.js';

const a = parseArgs(process.argv.slice(2));

async function child(k: number, seconds: number, base: string): Promise<void> {
  const dir = await mkdtemp(join(base, 'poplar-fsync-pool-'));
  try {
    for (let i = 0; i < k; i++) {
      await mkdir(join(dir, String(i), 'tmp'), { recursive: true });
      await mkdir(join(dir, String(i), 'new'));
    }
    const body = Buffer.alloc(4096, 0x78);
    let done = 0;
    const end = Date.now() + seconds * 1000;
    const loop = async (i: number): Promise<void> => {
      const root = join(dir, String(i));
      const records = await open(join(root, 'records'), 'a');
      for (let j = 0; Date.now() < end; j++) {
        const fh = await open(join(root, 'tmp', String(j)), 'wx');
        await fh.write(body);
        await fh.sync();
        await fh.close();
        await rename(join(root, 'tmp', String(j)), join(root, 'new', String(j)));
        const folder = await open(join(root, 'new'), 'r');
        await Promise.all([folder.sync(), records.write(`${j} 4096\n`).then(() => records.datasync())]);
        await folder.close();
        done++;
      }
      await records.close();
    };
    const cpu0 = process.cpuUsage();
    await Promise.all(Array.from({ length: k }, (_, i) => loop(i)));
    const cpu = process.cpuUsage(cpu0);
    process.stdout.write(JSON.stringify({ perSecond: done / seconds, cpuMs: (cpu.user + cpu.system) / 1000 / Math.max(done, 1) }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function main(): void {
  const pools = a.str('pools', '4,8,32').split(',').map(Number);
  const ks = a.str('concurrency', '1,8,32').split(',').map(Number);
  const seconds = a.num('seconds', 3);
  const rounds = a.num('rounds', 2);
  const dir = a.str('dir', tmpdir());
  const self = fileURLToPath(import.meta.url);
  console.log(`| round | UV_THREADPOOL_SIZE | deliveries at once | deliveries/s | CPU-ms per delivery |`);
  console.log(`| ---: | ---: | ---: | ---: | ---: |`);
  for (let r = 1; r <= rounds; r++) {
    for (const k of ks) {
      for (const pool of pools) {
        const out = spawnSync(process.execPath, [self, '--child', String(k), '--seconds', String(seconds), '--dir', dir], {
          env: { ...process.env, UV_THREADPOOL_SIZE: String(pool) },
          encoding: 'utf8',
        });
        if (out.status !== 0) throw new Error(`child failed: ${out.stderr}`);
        const { perSecond, cpuMs } = JSON.parse(out.stdout) as { perSecond: number; cpuMs: number };
        console.log(`| ${r} | ${pool} | ${k} | ${perSecond.toFixed(0)} | ${cpuMs.toFixed(3)} |`);
      }
    }
  }
}

if (a.has('child')) {
  child(a.num('child', 8), a.num('seconds', 3), a.str('dir', tmpdir())).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main();
}
