/**
 * R-X16: the worker's side of the cross-worker shared state and of the primary's channel. The
 * truth is the primary's `LocalSharedState`; a worker asks over its IPC channel (node:cluster's
 * `process.send`) with a request id, and fails closed when no answer comes:
 *
 *   worker → primary   { t: 'ss', id, m: method, a: args }    a question (`id`), or a giving back (no id)
 *   primary → worker   { t: 'ss-r', id, v } | { t: 'ss-r', id, e }
 *   primary → worker   { t: 'req', id, kind, body }           the primary's channel (ipc-host.ts PrimaryChannel)
 *   worker → primary   { t: 'req-r', id, v } | { t: 'req-r', id, e }
 *
 * A question not answered within `timeoutMs` (SHARED_STATE_TIMEOUT_MS) rejects with
 * `SharedStateError`; so does one asked while `maxPending` are waiting, or after the channel
 * closed. Givings back are sent and forgotten: if the primary never gets one (it is gone), the
 * worker is gone with it, and a new primary starts from nothing.
 */
import { SharedStateError } from '../errors.js';
import {
  SHARED_STATE_MAX_PENDING, SHARED_STATE_TIMEOUT_MS, type Admission, type CachedLogin, type LimitSettings, type SharedSettings,
  type SharedState,
} from './shared-state.js';

/** One end of an IPC channel: `process` in a worker (send, 'message'). */
export interface IpcPort {
  send(message: unknown): void;
  onMessage(handler: (message: unknown) => void): void;
}

/** The worker's `process` as an IpcPort; sending after the channel closed is a no-op. */
export function processPort(): IpcPort {
  return {
    send: (message) => {
      // With a callback, a failed send is reported to it instead of an 'error' event.
      if (process.connected && process.send !== undefined) process.send(message, undefined, {}, () => undefined);
    },
    onMessage: (handler) => process.on('message', handler),
  };
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

type Message = { t?: unknown; id?: unknown; v?: unknown; e?: unknown; kind?: unknown; body?: unknown };

/** Answers the primary's requests: a handler per kind, returning what goes back. */
export type RequestHandler = (body: unknown) => unknown;

export class IpcSharedState implements SharedState {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly handlers = new Map<string, RequestHandler>();
  private closed = false;

  constructor(
    private readonly port: IpcPort,
    readonly key: Buffer,
    private readonly opts: { readonly timeoutMs?: number; readonly maxPending?: number } = {},
  ) {
    port.onMessage((raw) => this.receive(raw as Message));
  }

  /** Questions waiting for the primary now. */
  get waiting(): number {
    return this.pending.size;
  }

  /** The channel is gone (the primary died): everything waiting, and everything after, fails closed. */
  close(): void {
    this.closed = true;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new SharedStateError('the primary process is gone'));
    }
  }

  /** Answers the primary's `kind` requests (PrimaryChannel.request/broadcast). */
  handle(kind: string, handler: RequestHandler): void {
    this.handlers.set(kind, handler);
  }

  private receive(m: Message): void {
    if (m === null || typeof m !== 'object') return;
    if (m.t === 'ss-r' && typeof m.id === 'number') {
      const p = this.pending.get(m.id);
      if (p === undefined) return; // answered after its timeout
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.e !== undefined) p.reject(new SharedStateError(String(m.e)));
      else p.resolve(m.v);
    } else if (m.t === 'req' && typeof m.id === 'number' && typeof m.kind === 'string') {
      const id = m.id;
      const handler = this.handlers.get(m.kind);
      if (handler === undefined) {
        this.port.send({ t: 'req-r', id, e: `no handler for ${m.kind}` });
        return;
      }
      Promise.resolve()
        .then(() => handler(m.body))
        .then((v) => this.port.send({ t: 'req-r', id, v }), (e: unknown) => this.port.send({ t: 'req-r', id, e: String(e) }));
    }
  }

  private ask<T>(m: string, a: readonly unknown[]): Promise<T> {
    if (this.closed) return Promise.reject(new SharedStateError('the primary process is gone'));
    if (this.pending.size >= (this.opts.maxPending ?? SHARED_STATE_MAX_PENDING)) {
      return Promise.reject(new SharedStateError('too many questions waiting for the shared state'));
    }
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SharedStateError(`the shared state did not answer ${m} within ${this.opts.timeoutMs ?? SHARED_STATE_TIMEOUT_MS} ms`));
      }, this.opts.timeoutMs ?? SHARED_STATE_TIMEOUT_MS);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.port.send({ t: 'ss', id, m, a });
    });
  }

  private tell(m: string, a: readonly unknown[]): void {
    if (!this.closed) this.port.send({ t: 'ss', m, a });
  }

  admit(ip: string): Promise<Admission> {
    return this.ask('admit', [ip]);
  }

  release(ip: string): void {
    this.tell('release', [ip]);
  }

  acquireUser(user: string): Promise<boolean> {
    return this.ask('acquireUser', [user]);
  }

  releaseUser(user: string): void {
    this.tell('releaseUser', [user]);
  }

  penaltyNow(ip: string, user: string | undefined, now: number): Promise<number> {
    return this.ask('penaltyNow', [ip, user ?? null, now]);
  }

  loginFailed(ip: string, user: string | undefined, fingerprint: string | undefined, now: number): Promise<number> {
    return this.ask('loginFailed', [ip, user ?? null, fingerprint ?? null, now]);
  }

  loginSucceeded(user: string): void {
    this.tell('loginSucceeded', [user]);
  }

  async cachedLogin(user: string, now: number): Promise<CachedLogin | undefined> {
    return (await this.ask<CachedLogin | null>('cachedLogin', [user, now])) ?? undefined;
  }

  rememberLogin(user: string, entry: CachedLogin): void {
    this.tell('rememberLogin', [user, entry]);
  }

  claim(name: string): Promise<boolean> {
    return this.ask('claim', [name]);
  }

  unclaim(name: string): void {
    this.tell('unclaim', [name]);
  }

  /** The primary holds the settings: it re-reads the configuration on a reload itself. */
  update(_limits: LimitSettings): void {}

  configure(_settings: SharedSettings): void {}
}
