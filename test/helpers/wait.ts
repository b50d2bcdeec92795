/**
 * Waits until `condition` holds, polling every 10 ms; fails after `ms`. The condition may be async
 * (a file to stat, a reply to read). For log lines written after a close, threads ending, and, in
 * place of a sleep, for the later event that proves an earlier one did not happen.
 */
export async function waitFor(condition: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
