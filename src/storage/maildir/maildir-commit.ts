/**
 * Group commit of deliveries to one maildrop (R-X6, R-S12). A delivery writes and fsyncs its own
 * file and renames it into new/; what is left to make it durable and give it a uid is shared
 * work: fsync(2) of the directory, the uidlist lock, one append of uid records and its fdatasync.
 * Deliveries that arrive while a commit runs wait and go together in the next one, so a busy
 * maildrop pays those once per batch instead of once per message, and an idle one waits for
 * nothing (the first delivery commits at once).
 *
 * A batch succeeds or fails as a whole: every member's promise resolves with its own uid once the
 * batch is durable, or rejects with the batch's error, and its deliverer then removes its file
 * (nothing that was not acknowledged stays visible, as before).
 */

/** A batch is cut at this many deliveries (one uidlist write of a few KiB). */
export const MAX_BATCH = 256;

interface Waiter<I, R> {
  readonly item: I;
  readonly resolve: (r: R) => void;
  readonly reject: (err: unknown) => void;
}

export class GroupCommit<I, R> {
  private queue: Waiter<I, R>[] = [];
  private running = false;

  /** `commit` makes a batch durable and returns one result per item, in order. */
  constructor(private readonly commit: (items: readonly I[]) => Promise<readonly R[]>) {}

  /** True while nothing is queued or being committed. */
  get idle(): boolean {
    return !this.running && this.queue.length === 0;
  }

  /** Resolves with the item's result once the batch holding it is durable. */
  submit(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_BATCH);
        try {
          const results = await this.commit(batch.map((w) => w.item));
          if (results.length !== batch.length) throw new Error(`commit returned ${results.length} results for ${batch.length} items`);
          batch.forEach((w, i) => w.resolve(results[i]!));
        } catch (err) {
          for (const w of batch) w.reject(err);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
