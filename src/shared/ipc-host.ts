/**
 * R-X16: the primary's side. `SharedStateHost` answers the workers' questions (ipc-client.ts
 * gives the message shapes) from the primary's `LocalSharedState` and remembers what each worker
 * holds (connections per address, sessions per user, claims), so that when a worker dies
 * `releaseWorker` gives all of it back at once: a dead holder's claims end with it.
 * `PrimaryChannel` sends requests to one worker or to all of them (metrics, the session list, a
 * reload) and collects the answers, each within a timeout.
 */
import type { LocalSharedState } from './local-state.js';
import type { CachedLogin } from './shared-state.js';

/** A worker as the primary sees it (node:cluster's Worker fits). */
export interface WorkerEnd {
  readonly id: number;
  send(message: unknown): void;
}

interface Held {
  readonly ips: Map<string, number>;
  readonly users: Map<string, number>;
  readonly claims: Set<string>;
}

type Ask = { t?: unknown; id?: unknown; m?: unknown; a?: unknown };

const bump = (m: Map<string, number>, k: string, d: number): void => {
  const n = (m.get(k) ?? 0) + d;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
};

export class SharedStateHost {
  private readonly held = new Map<number, Held>();
  /** Test hook (POPLAR_TEST_HOOKS): questions are dropped unanswered, as from a hung state. */
  stalled = false;

  constructor(readonly state: LocalSharedState) {}

  private of(worker: number): Held {
    let h = this.held.get(worker);
    if (h === undefined) {
      h = { ips: new Map(), users: new Map(), claims: new Set() };
      this.held.set(worker, h);
    }
    return h;
  }

  /** Handles one message from `worker`; true when it was the shared state's. */
  receive(worker: WorkerEnd, raw: unknown): boolean {
    const m = raw as Ask;
    if (m === null || typeof m !== 'object' || m.t !== 'ss' || typeof m.m !== 'string' || !Array.isArray(m.a)) return false;
    if (this.stalled) return true;
    const a = m.a as unknown[];
    let v: unknown;
    try {
      v = this.apply(worker.id, m.m, a);
    } catch (e) {
      if (typeof m.id === 'number') worker.send({ t: 'ss-r', id: m.id, e: String(e) });
      return true;
    }
    if (typeof m.id === 'number') worker.send({ t: 'ss-r', id: m.id, v: v ?? null });
    return true;
  }

  private apply(worker: number, method: string, a: unknown[]): unknown {
    const s = this.state;
    const str = (i: number): string => {
      const x = a[i];
      if (typeof x !== 'string') throw new Error(`bad argument ${i} to ${method}`);
      return x;
    };
    const opt = (i: number): string | undefined => (a[i] === null || a[i] === undefined ? undefined : str(i));
    const num = (i: number): number => {
      const x = a[i];
      if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error(`bad argument ${i} to ${method}`);
      return x;
    };
    const h = this.of(worker);
    switch (method) {
      case 'admit': {
        const r = s.admitNow(str(0));
        if (r === 'ok') bump(h.ips, str(0), 1);
        return r;
      }
      case 'release':
        if ((h.ips.get(str(0)) ?? 0) > 0) {
          bump(h.ips, str(0), -1);
          s.release(str(0));
        }
        return undefined;
      case 'acquireUser': {
        const ok = s.acquireUserNow(str(0));
        if (ok) bump(h.users, str(0), 1);
        return ok;
      }
      case 'releaseUser':
        if ((h.users.get(str(0)) ?? 0) > 0) {
          bump(h.users, str(0), -1);
          s.releaseUser(str(0));
        }
        return undefined;
      case 'penaltyNow':
        return s.penaltyNowSync(str(0), opt(1), num(2));
      case 'loginFailed':
        return s.loginFailedNow(str(0), opt(1), opt(2), num(3));
      case 'loginSucceeded':
        s.loginSucceeded(str(0));
        return undefined;
      case 'cachedLogin':
        return s.cachedLoginNow(str(0), num(1));
      case 'rememberLogin': {
        const e = a[1] as CachedLogin | null;
        if (e === null || typeof e !== 'object' || typeof e.mac !== 'string' || typeof e.expires !== 'number') throw new Error('bad cache entry');
        s.rememberLogin(str(0), { mac: e.mac, expires: e.expires });
        return undefined;
      }
      case 'claim': {
        const ok = s.claimNow(str(0));
        if (ok) h.claims.add(str(0));
        return ok;
      }
      case 'unclaim':
        if (h.claims.delete(str(0))) s.unclaim(str(0));
        return undefined;
      default:
        throw new Error(`unknown shared-state method ${method}`);
    }
  }

  /** A worker is gone: every connection, user slot and claim it held is given back. Returns what was. */
  releaseWorker(worker: number): { connections: number; users: number; claims: number } {
    const h = this.held.get(worker);
    this.held.delete(worker);
    if (h === undefined) return { connections: 0, users: 0, claims: 0 };
    let connections = 0;
    let users = 0;
    for (const [ip, n] of h.ips) for (let i = 0; i < n; i++, connections++) this.state.release(ip);
    for (const [user, n] of h.users) for (let i = 0; i < n; i++, users++) this.state.releaseUser(user);
    for (const c of h.claims) this.state.unclaim(c);
    return { connections, users, claims: h.claims.size };
  }

  /** Connections each live worker holds now (the `worker` label of poplar_sessions_active). */
  connectionsByWorker(): Map<number, number> {
    const out = new Map<number, number>();
    for (const [id, h] of this.held) out.set(id, [...h.ips.values()].reduce((x, y) => x + y, 0));
    return out;
  }
}

interface Waiting {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/** The primary → worker requests (the admin API's "list sessions", "end session", metrics, reload). */
export class PrimaryChannel {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();

  /** Handles one message from a worker; true when it answered a request of this channel. */
  receive(raw: unknown): boolean {
    const m = raw as { t?: unknown; id?: unknown; v?: unknown; e?: unknown };
    if (m === null || typeof m !== 'object' || m.t !== 'req-r' || typeof m.id !== 'number') return false;
    const w = this.waiting.get(m.id);
    if (w !== undefined) {
      this.waiting.delete(m.id);
      clearTimeout(w.timer);
      if (m.e !== undefined) w.reject(new Error(String(m.e)));
      else w.resolve(m.v);
    }
    return true;
  }

  /** Asks one worker; rejects after `timeoutMs` without an answer. */
  request(worker: WorkerEnd, kind: string, body: unknown, timeoutMs: number): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`worker ${worker.id} did not answer ${kind} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
      worker.send({ t: 'req', id, kind, body });
    });
  }

  /** Asks every worker; each answer or failure by worker id. */
  async broadcast(workers: readonly WorkerEnd[], kind: string, body: unknown, timeoutMs: number): Promise<Map<number, PromiseSettledResult<unknown>>> {
    const settled = await Promise.allSettled(workers.map((w) => this.request(w, kind, body, timeoutMs)));
    return new Map(workers.map((w, i) => [w.id, settled[i]!]));
  }
}
