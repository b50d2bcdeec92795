/**
 * SHA-crypt against known answers (R-X8): every test vector of Drepper's "Unix crypt using
 * SHA-256 and SHA-512" for both algorithms (default and custom rounds, a salt cut to 16
 * characters, rounds below the minimum raised to 1000), checked against glibc/libxcrypt's
 * crypt(3) too, and hashes made by Dovecot's own `doveadm pw`; in-thread and through the worker
 * pool (sha-crypt-pool.ts) the server path uses. Pure: no socket, no file.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { verifyPassword } from './password.js';
import { parseShaCrypt, shaCrypt } from './sha-crypt.js';
import { ShaCryptPool } from './sha-crypt-pool.js';

type Vector = readonly [salt: string, rounds: number | undefined, password: string, sha512: string, sha256: string];

const DREPPER: readonly Vector[] = [
  ['saltstring', undefined, 'Hello world!',
    '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
    '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5'],
  ['saltstringsaltstring', 10000, 'Hello world!',
    '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
    '$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA'],
  ['toolongsaltstring', 5000, 'This is just a test',
    '$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0',
    '$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5'],
  ['anotherlongsaltstring', 1400, 'a very much longer text to encrypt.  This one even stretches over morethan one line.',
    '$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1',
    '$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1'],
  ['short', 77777, 'we have a short salt string but not a short password',
    '$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0',
    '$5$rounds=77777$short$JiO1O3ZpDAxGJeaDIuqCoEFysAe1mZNJRs3pw0KQRd/'],
  ['asaltof16chars..', 123456, 'a short string',
    '$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1',
    '$5$rounds=123456$asaltof16chars..$gP3VQ/6X7UUEW3HkBn2w1/Ptq2jxPyzV/cZKmF/wJvD'],
  ['roundstoolow', 10, 'the minimum number is still observed',
    '$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.',
    '$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC'],
  // Not Drepper's: an empty password and salt (libxcrypt's crypt(3) output).
  ['', undefined, '',
    '$6$$/chiBau24cE26QQVW3IfIe68Xu5.JQ4E8Ie7lcRLwqxO5cxGuBhqF2HmTL.zWJ9zjChg3yJYFXeGBQ2y3Ba1d1',
    '$5$$3c2QQ0KjIU1OLtB29cl8Fplc2WN7X89bnoEjaR7tWu.'],
];

describe('SHA-crypt', () => {
  it(`R-X8 Drepper's SHA-512 vectors: default, custom and too few rounds, long salts cut to 16`, async () => {
    for (const [salt, rounds, pw, want] of DREPPER) assert.equal(await shaCrypt('sha512', Buffer.from(pw), salt, rounds), want);
  });

  it(`R-X8 Drepper's SHA-256 vectors: default, custom and too few rounds, long salts cut to 16`, async () => {
    for (const [salt, rounds, pw, , want] of DREPPER) assert.equal(await shaCrypt('sha256', Buffer.from(pw), salt, rounds), want);
  });

  it(`R-X8 Drepper's vectors of both algorithms through the worker pool the server path uses`, async () => {
    const pool = new ShaCryptPool({ size: 2 });
    await pool.ready();
    const got = await Promise.all(DREPPER.flatMap(([salt, rounds, pw]) => [
      pool.run('sha512', Buffer.from(pw), salt, rounds),
      pool.run('sha256', Buffer.from(pw), salt, rounds),
    ]));
    assert.deepEqual(got, DREPPER.flatMap(([, , , sha512, sha256]) => [sha512, sha256]));
    assert.deepEqual(pool.counts, { inWorker: 2 * DREPPER.length, inThread: 0 });
  });

  it('R-X8 hashes made by doveadm pw (Dovecot 2.3) verify, and a one-character change does not', async () => {
    const made: readonly [string, string][] = [
      ['{SHA512-CRYPT}$6$2xHtSu1OvXv5HAn1$r6VHA1kMqlUqOCNOFauxeEeY4OpONe2zst.4/FeZgzbyLXHrBTwTsr0h5MqzQkFI47xlw5xs4OsQqATNqlFAh/', 'bench-password'],
      ['{SHA256-CRYPT}$5$0mlgl3EWQ9qXdxH0$aIFRjf28AMwhFjjNtR3cNyLdA6/ZiiTMUy6qg3vmZU5', 'pässwörd'],
      ['{SHA512-CRYPT}$6$rounds=20000$rVz0smFZBpaY.49u$R2O6jzlHvGL.VgaqktijSo2vemHekZdIFg6TGCsvs2MtU3aQnQV2mykSfD6FapDNXNl8jIYCVwdWY1rTauYm30', 'with rounds'],
    ];
    for (const [stored, pw] of made) {
      assert.ok(await verifyPassword(stored, pw), stored);
      assert.ok(!(await verifyPassword(stored, `${pw.slice(0, -1)}X`)), stored);
    }
  });

  it('R-X8 hashes interleaved on one shared hasher do not disturb each other', async () => {
    const [a, b] = await Promise.all([
      shaCrypt('sha512', Buffer.from('Hello world!'), 'saltstring'),
      shaCrypt('sha512', Buffer.from('This is just a test'), 'toolongsaltstring', 5000),
    ]);
    assert.equal(a, DREPPER[0]![3]);
    assert.equal(b, DREPPER[2]![3]);
  });

  it('R-X8 parseShaCrypt refuses malformed hashes and more rounds than one login may cost', () => {
    assert.deepEqual(parseShaCrypt('$6$rounds=10000$saltstringsaltst$x'), { alg: 'sha512', salt: 'saltstringsaltst', rounds: 10000 });
    assert.deepEqual(parseShaCrypt('$5$salt$x'), { alg: 'sha256', salt: 'salt', rounds: undefined });
    assert.equal(parseShaCrypt('$6$rounds=5000001$salt$x'), undefined);
    assert.equal(parseShaCrypt('$7$salt$x'), undefined);
    assert.equal(parseShaCrypt('$6$salt$bad!'), undefined);
  });
});
