/**
 * R-S13's "equally slow" check, shared by the login tests: the median time of a failed login
 * for an unknown user over that for a known user with a wrong secret. With a costly hash a
 * missing dummy check shows as a ratio near 0.01; equal work gives a ratio near 1.
 */
import { Pop3Client } from './pop3-client.js';

export async function failureTimeRatio(
  port: number,
  attempt: (c: Pop3Client, user: string) => Promise<unknown>,
  users = { known: 'alice', unknown: 'ghost' },
  rounds = 7,
): Promise<number> {
  const time = async (user: string): Promise<number> => {
    const c = await Pop3Client.connect(port);
    const t0 = process.hrtime.bigint();
    await attempt(c, user);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    c.close();
    return ms;
  };
  const known: number[] = [];
  const unknown: number[] = [];
  for (let i = 0; i < rounds; i++) {
    known.push(await time(users.known));
    unknown.push(await time(users.unknown));
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return median(unknown) / median(known);
}
