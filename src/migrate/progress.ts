/**
 * Progress of a long import or export (R-X15): a one-line bar redrawn in place on a terminal, or
 * plain lines (every PLAIN_EVERY messages, and at the end) when stderr is a pipe or a file.
 */
const PLAIN_EVERY = 100;
const REDRAW_MS = 100;
const WIDTH = 30;

export class Progress {
  private done = 0;
  private bytes = 0;
  private lastDraw = 0;

  constructor(
    private readonly label: string,
    private readonly total: number | undefined,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}

  tick(bytes: number): void {
    this.done++;
    this.bytes += bytes;
    if (this.out.isTTY) {
      const now = Date.now();
      if (now - this.lastDraw >= REDRAW_MS) {
        this.lastDraw = now;
        this.out.write(`\r${this.bar()}`);
      }
    } else if (this.done % PLAIN_EVERY === 0) {
      this.out.write(`${this.line()}\n`);
    }
  }

  /** The last line; `stopped` when the run ended with an error. */
  finish(outcome: 'done' | 'stopped' = 'done'): void {
    if (this.out.isTTY) this.out.write(`\r${this.bar()}${outcome === 'done' ? '' : ` ${outcome}`}\n`);
    else this.out.write(`${this.line()} ${outcome}\n`);
  }

  private line(): string {
    const of = this.total === undefined ? '' : ` of ${this.total}`;
    return `${this.label}: ${this.done}${of} messages, ${this.bytes} octets`;
  }

  private bar(): string {
    if (this.total === undefined || this.total === 0) return this.line();
    const filled = Math.round((this.done / this.total) * WIDTH);
    return `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${this.line()}`;
  }
}
