/**
 * The maildrop objects (MaildirMaildrop, maildir-maildrop.ts) of one or more MaildirStores: one
 * per resolved root, so every store sharing a registry shares each maildrop's in-process state
 * (its mutex in front of the uidlist lock, snapshot count and exclusive flag, session marker,
 * caches). Stores on separate registries coordinate through the files only, as two processes do.
 *
 * Idle maildrops beyond MAX_CACHED are forgotten, least recently used first; the files are the
 * truth, so a forgotten one only costs a full re-read of the uidlist and a full scan. Listings
 * are large (a 50,000-message maildrop's is some MB), so they have their own budget: past
 * MAX_LISTED_MESSAGES, the listings of maildrops with no open snapshot are dropped, least
 * recently used first.
 */
import { resolve } from 'node:path';
import { MaildirMaildrop, type MaildropHooks, type MaildropHost } from './maildir-maildrop.js';

const MAX_CACHED = 256;
/** Messages, summed over the cached listings of all maildrops, before idle ones are dropped. */
const MAX_LISTED_MESSAGES = 500_000;

export interface MaildropRegistryOptions {
  /** Observation points in each maildrop's work (maildir-maildrop.ts MaildropHooks). */
  readonly hooks?: MaildropHooks;
}

export class MaildropRegistry implements MaildropHost {
  readonly hooks: MaildropHooks;
  /** Resolved root -> maildrop; Map order is the LRU order (least recent first). */
  private readonly maildrops = new Map<string, MaildirMaildrop>();

  constructor(opts: MaildropRegistryOptions = {}) {
    this.hooks = opts.hooks ?? {};
  }

  /** The maildrop object of `root` (created on first use), now the most recently used. */
  get(root: string): MaildirMaildrop {
    const key = resolve(root);
    let maildrop = this.maildrops.get(key);
    if (maildrop === undefined) {
      maildrop = new MaildirMaildrop(key, this);
    } else {
      this.maildrops.delete(key); // re-inserted below: Map order is the LRU order
    }
    this.maildrops.set(key, maildrop);
    if (this.maildrops.size > MAX_CACHED) this.evictIdle(maildrop);
    return maildrop;
  }

  /** Keeps the listing `current` just cached, dropping other idle maildrops' listings past the budget. */
  listed(current: MaildirMaildrop): void {
    let listed = 0;
    for (const m of this.maildrops.values()) listed += m.listedMessages;
    for (const m of this.maildrops.values()) {
      if (listed <= MAX_LISTED_MESSAGES) return;
      if (m === current) continue;
      const count = m.listedMessages;
      if (m.shedListing()) listed -= count;
    }
  }

  /** Removes lingering session markers and releases kept uidlist locks of every maildrop. */
  async close(): Promise<void> {
    await Promise.all([...this.maildrops.values()].map((m) => m.close()));
  }

  /** Forgets idle maildrops, oldest first, never the one just handed out. */
  private evictIdle(current: MaildirMaildrop): void {
    for (const [key, m] of this.maildrops) {
      if (this.maildrops.size <= MAX_CACHED) return;
      // A lingering marker is removed by its own timer, which holds the maildrop it belongs to.
      if (m !== current && m.idle) this.maildrops.delete(key);
    }
  }
}
