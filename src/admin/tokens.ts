/**
 * The admin API's bearer tokens (R-X21). `poplar admin token` makes one: 32 random bytes, shown
 * once as `poplar_<id>_<base64url>`; the file (`admin.tokens_file`) keeps only the id, the SHA-256
 * of the whole token and when it was made, one line each:
 *
 *   <id> sha256:<hex> <ISO time>
 *
 * A presented token is hashed and compared with every stored hash by timingSafeEqual, so the
 * comparison takes the same time whichever token (or none) it matches. The file is edited under
 * its lock and replaced atomically (storage/admin-file.ts), mode 0600 when new; the server reads
 * it again when its size, mtime or inode changes, so a revoked token stops working at once.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { editFile } from '../storage/admin-file.js';

export class AdminTokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdminTokenError';
  }
}

export interface TokenInfo {
  /** 8 hex digits, also in the token itself (`poplar_<id>_…`): what `--revoke` takes. */
  readonly id: string;
  readonly created: string;
}

interface Entry extends TokenInfo {
  readonly hash: Buffer;
}

const TOKEN = /^poplar_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$/;
const LINE = /^([0-9a-f]{8}) sha256:([0-9a-f]{64}) (\S+)$/;
const HEADER = '# poplar admin tokens (SHA-256 hashes only; poplar admin token adds and revokes them)\n';

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

function parse(text: string | undefined): Entry[] {
  const out: Entry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const m = LINE.exec(line.trim());
    if (m !== null) out.push({ id: m[1]!, hash: Buffer.from(m[2]!, 'hex'), created: m[3]! });
  }
  return out;
}

const serialize = (entries: readonly Entry[]): string =>
  HEADER + entries.map((e) => `${e.id} sha256:${e.hash.toString('hex')} ${e.created}\n`).join('');

export class AdminTokens {
  private cache: { version: string; entries: Entry[] } | undefined;

  constructor(readonly path: string) {}

  /** Makes and stores a new token; the token itself is returned here and nowhere else. */
  async create(now = new Date()): Promise<{ id: string; token: string }> {
    return editFile(this.path, (text) => {
      const entries = parse(text);
      let id: string;
      do id = randomBytes(4).toString('hex');
      while (entries.some((e) => e.id === id));
      const token = `poplar_${id}_${randomBytes(32).toString('base64url')}`;
      entries.push({ id, hash: sha256(token), created: now.toISOString() });
      return { text: serialize(entries), result: { id, token } };
    });
  }

  /** Removes the token whose id is `idOrPrefix` or starts with it (one token only); returns its id. */
  async revoke(idOrPrefix: string): Promise<string> {
    const wanted = idOrPrefix.replace(/^poplar_/, '').toLowerCase();
    if (!/^[0-9a-f]{1,8}/.test(wanted)) throw new AdminTokenError(`invalid token id "${idOrPrefix}" (the 8 hex digits after poplar_)`);
    const key = wanted.slice(0, 8);
    return editFile(this.path, (text) => {
      const entries = parse(text);
      const hits = entries.filter((e) => e.id.startsWith(key));
      if (hits.length === 0) throw new AdminTokenError(`no admin token with id ${key} in ${this.path}`);
      if (hits.length > 1) throw new AdminTokenError(`${hits.length} admin tokens start with ${key}; give more of the id`);
      const id = hits[0]!.id;
      return { text: serialize(entries.filter((e) => e.id !== id)), result: id };
    });
  }

  async list(): Promise<TokenInfo[]> {
    return (await this.entries()).map(({ id, created }) => ({ id, created }));
  }

  /** The id of the stored token `presented` is, or undefined. Constant time in the token's value. */
  async verify(presented: string): Promise<string | undefined> {
    const entries = await this.entries();
    const hash = sha256(presented);
    const wellFormed = TOKEN.test(presented);
    let found: string | undefined;
    for (const e of entries) if (timingSafeEqual(hash, e.hash) && wellFormed) found = e.id;
    return found;
  }

  private async entries(): Promise<Entry[]> {
    const s = await stat(this.path).catch(() => undefined);
    const version = s === undefined ? 'missing' : `${s.ino}:${s.size}:${s.mtimeMs}`;
    if (this.cache?.version === version) return this.cache.entries;
    const text = s === undefined ? undefined : await readFile(this.path, 'utf8').catch(() => undefined);
    const entries = parse(text);
    this.cache = { version, entries };
    return entries;
  }
}
