/**
 * Dovecot's password schemes (R-X8): hashes made by other implementations (glibc/libxcrypt,
 * OpenSSL, the Argon2 reference) verify, and wrong passwords, malformed and over-costly hashes
 * do not. Pure: no socket, no file.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { argon2id } from 'hash-wasm';
import { verifyPassword } from './password.js';
import { shaCrypt } from './sha-crypt.js';

const ok = async (stored: string, pw: string): Promise<void> => assert.ok(await verifyPassword(stored, pw), `${stored} / ${pw}`);
const no = async (stored: string, pw: string): Promise<void> => assert.ok(!(await verifyPassword(stored, pw)), `${stored} / ${pw}`);

describe('Dovecot password schemes', () => {
  it('R-X8 SHA512-CRYPT and SHA256-CRYPT: Drepper\'s test vectors and OpenSSL\'s `passwd -6/-5` output', async () => {
    // "Unix crypt using SHA-256 and SHA-512" test vectors (rounds=10000, salt cut to 16 characters).
    assert.equal(
      await shaCrypt('sha512', Buffer.from('Hello world!'), 'saltstringsaltstring', 10000),
      '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
    );
    assert.equal(
      await shaCrypt('sha256', Buffer.from('Hello world!'), 'saltstringsaltstring', 10000),
      '$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA',
    );
    // openssl passwd -6 -salt saltsalt password / -5
    await ok('{SHA512-CRYPT}$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/', 'password');
    await ok('{SHA256-CRYPT}$5$saltsalt$gOjOtoMpVhru2uyjeJSEc/JaLQWOXMNmlOnj6T4AtC.', 'password');
    await no('{SHA512-CRYPT}$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/', 'Password');
    await no('{SHA512-CRYPT}$6$rounds=900000000$salt$abc', 'password');
  });

  it('R-X8 BLF-CRYPT: a libxcrypt bcrypt hash, as $2b$ and as Dovecot\'s $2y$', async () => {
    const h = '$2b$04$p5h4OSpqkRW8rxYqxkQRtu2LnW6JiYwgkSheqfeKg7QBAJbMYKLgS';
    await ok(`{BLF-CRYPT}${h}`, 'password');
    await ok(`{BLF-CRYPT}${h.replace('$2b$', '$2y$')}`, 'password');
    await no(`{BLF-CRYPT}${h}`, 'passw0rd');
    await no('{BLF-CRYPT}$2y$31$p5h4OSpqkRW8rxYqxkQRtu2LnW6JiYwgkSheqfeKg7QBAJbMYKLgS', 'password');
  });

  it('R-X8 ARGON2I/ARGON2ID: the Argon2 reference implementation\'s example, and a fresh argon2id hash', async () => {
    // phc-winner-argon2 README: echo -n "password" | ./argon2 somesalt -t 2 -m 16 -p 4 -l 24
    await ok('{ARGON2I}$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG', 'password');
    const fresh = await argon2id({ password: 'correct horse', salt: randomBytes(16), iterations: 2, parallelism: 1, memorySize: 1024, hashLength: 32, outputType: 'encoded' });
    await ok(`{ARGON2ID}${fresh}`, 'correct horse');
    await no(`{ARGON2ID}${fresh}`, 'correct horsE');
    await no(`{ARGON2ID}${fresh.replace('m=1024', 'm=4194304')}`, 'correct horse');
  });

  it('R-X8 SSHA512, SSHA256, SHA512, PLAIN, SCRAM-SHA-256 and NTLM', async () => {
    const salt = Buffer.from('12345678');
    const ssha512 = Buffer.concat([createHash('sha512').update('pw').update(salt).digest(), salt]).toString('base64');
    await ok(`{SSHA512}${ssha512}`, 'pw');
    await no(`{SSHA512}${ssha512}`, 'pW');
    const ssha256 = Buffer.concat([createHash('sha256').update('pw').update(salt).digest(), salt]).toString('base64');
    await ok(`{SSHA256}${ssha256}`, 'pw');
    await ok(`{SHA512}${createHash('sha512').update('pw').digest('base64')}`, 'pw');
    await ok(`{sha512}${createHash('sha512').update('pw').digest('hex')}`, 'pw');
    await ok('{PLAIN}pässwörd', 'pässwörd');
    await no('{PLAIN}pässwörd', 'passwort');
    // RFC 7677 §3's user: password "pencil" and the keys derived from its salt and iterations.
    await ok('{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=', 'pencil');
    // MS-NLMP §4.2.2.1.2: NTOWFv1("Password").
    await ok('{NTLM}a4f49c406510bdcab6824ee7c30fd852', 'Password');
    await no('{UNKNOWN}x', 'x');
  });
});
