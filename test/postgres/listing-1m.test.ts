/**
 * R-X9 R-S4 on PostgreSQL (issue 15): a maildrop of 1,000,000 messages (rows made by
 * generate_series in SQL, a few seconds) is listed by a real `poplar serve` with
 * `storage.backend = "postgres"`: STAT, LIST and UIDL are complete and exact, and the server's
 * resident memory grows by a bounded amount. The listing is a compact MessageList built from
 * pages of packed columns (17 octets per message: 17 MB for 1M); a listing of one row object and one
 * MessageInfo per message (the snapshot before) grew the server by 225 MB; one packed row for
 * the whole listing, by 147 MB.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connectPostgres } from '../../src/storage/postgres/client.js';
import { migrate } from '../../src/storage/postgres/migrate.js';
import { startPoplar, type PoplarProcess } from '../helpers/poplar-process.js';
import { needPostgres, startPostgres, type PostgresServer } from '../helpers/postgres.js';

const N = 1_000_000;
/** Every 1000th message carries an imported UIDL (R-X11), the others list their uid. */
const IMPORTED_EVERY = 1000;
/** Server growth allowed while listing 1M messages (measured: 55 MB): the list (17 MB), a page of packed columns while read, the session's marks, garbage of the LIST and UIDL output not yet collected. */
const BOUND = 96 * 1024 * 1024;
const sizeOf = (uid: number): number => 1000 + (uid % 997);

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** A POP3 connection reading replies line by line; a multi-line reply is handed over line by line. */
class Pop3 {
  private buf = '';
  private waiting: (() => void) | undefined;
  constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
      this.waiting?.();
    });
  }

  async line(): Promise<string> {
    for (;;) {
      const nl = this.buf.indexOf('\r\n');
      if (nl >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 2);
        return line;
      }
      await new Promise<void>((resolve) => (this.waiting = resolve));
      this.waiting = undefined;
    }
  }

  async command(cmd: string): Promise<string> {
    this.socket.write(`${cmd}\r\n`);
    const reply = await this.line();
    assert.match(reply, /^\+OK/, `${cmd}: ${reply}`);
    return reply;
  }

  /** The lines of a multi-line reply, each handed to `each`, until the terminating dot; returns their count. */
  async lines(each: (line: string) => void): Promise<number> {
    let n = 0;
    for (;;) {
      const nl = this.buf.indexOf('\r\n.\r\n');
      // Take every complete line at once (1M lines one await each would be slow).
      const end = nl >= 0 ? nl : this.buf.lastIndexOf('\r\n');
      if (end > 0 || nl === 0) {
        const chunk = this.buf.slice(0, end);
        this.buf = this.buf.slice(nl >= 0 ? nl + 5 : end + 2);
        if (chunk !== '') for (const l of chunk.split('\r\n')) {
          each(l);
          n++;
        }
        if (nl >= 0) return n;
        continue;
      }
      await new Promise<void>((resolve) => (this.waiting = resolve));
      this.waiting = undefined;
    }
  }
}

describe('1M-message listing from PostgreSQL', { skip: needPostgres() }, () => {
  let pg: PostgresServer;
  let node: PoplarProcess | undefined;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await node?.cleanup();
    await pg?.stop();
  });

  it('R-X9 R-S4 R-X17 STAT, LIST and UIDL of 1,000,000 messages are complete and exact, and the server grows by a bounded amount', { timeout: 120_000 }, async (t) => {
    const url = await pg.createDatabase();
    const sql = connectPostgres({ url, poolSize: 1, statementTimeout: 0 });
    try {
      await migrate(sql);
      const [drop] = await sql<{ id: number }[]>`INSERT INTO maildrops (name, next_uid) VALUES ('alice', ${N + 1}) RETURNING id`;
      const [body] = await sql<{ id: number }[]>`INSERT INTO bodies (sha256, octets) VALUES (sha256('x'::bytea), 1) RETURNING id`;
      await sql`INSERT INTO body_chunks (body_id, seq, data) VALUES (${body!.id}, 0, 'x'::bytea)`;
      // Without the foreign-key triggers (the rows name the maildrop and body just made): 1M
      // checks would make the seeding take 30 s instead of 6.
      await sql.begin(async (tx) => {
        await tx`SET LOCAL session_replication_role = replica`;
        await tx`INSERT INTO messages (maildrop_id, uid, body_id, size, head, uidl, received_at)
          SELECT ${drop!.id}, g, ${body!.id}, 1000 + g % 997, ''::bytea,
                 CASE WHEN g % ${IMPORTED_EVERY} = 0 THEN 'imported-' || g END, now()
          FROM generate_series(1, ${N}) g`;
      });
      await sql`ANALYZE messages`;
    } finally {
      await sql.end({ timeout: 5 });
    }

    node = await startPoplar({ overrides: ['storage.backend=postgres', `postgres.url=${url}`], workers: 1 });
    const pid = node.child.pid!;
    const socket = connect({ port: node.pop3Port, host: '127.0.0.1' });
    const pop = new Pop3(socket);
    assert.match(await pop.line(), /^\+OK/);
    const baseline = rss(pid);
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rss(pid))), 5);
    try {
      await pop.command('USER alice');
      await pop.command('PASS wonderland');
      let total = 0;
      for (let uid = 1; uid <= N; uid++) total += sizeOf(uid);
      assert.equal(await pop.command('STAT'), `+OK ${N} ${total}`);

      await pop.command('LIST');
      let expect = 1;
      let listed = await pop.lines((l) => {
        if (l !== `${expect} ${sizeOf(expect)}`) assert.fail(`LIST line ${expect}: ${l}`);
        expect++;
      });
      assert.equal(listed, N);

      await pop.command('UIDL');
      expect = 1;
      let imported = 0;
      listed = await pop.lines((l) => {
        const want = expect % IMPORTED_EVERY === 0 ? `${expect} imported-${expect}` : `${expect} ${expect}`;
        if (l !== want) assert.fail(`UIDL line ${expect}: ${l}`);
        if (expect % IMPORTED_EVERY === 0) imported++;
        expect++;
      });
      assert.equal(listed, N);
      assert.equal(imported, N / IMPORTED_EVERY);
      await pop.command('QUIT');
    } finally {
      clearInterval(sampler);
      socket.destroy();
    }
    const growth = peak - baseline;
    t.diagnostic(`server RSS ${Math.round(baseline / 1048576)} MB before login, peak growth ${Math.round(growth / 1048576)} MB`);
    assert.ok(growth < BOUND, `server memory grew ${Math.round(growth / 1048576)} MB while listing ${N} messages (bound ${BOUND / 1048576} MB)`);
  });
});
