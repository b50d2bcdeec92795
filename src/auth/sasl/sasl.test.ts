/**
 * The SASL mechanisms as pure step machines, against the RFCs' published examples: RFC 7677 §3
 * (SCRAM-SHA-256), RFC 2195 §2 (CRAM-MD5), MS-NLMP §4.2.4 (NTLMv2), RFC 4616 (PLAIN), RFC 7628
 * §4.1 (OAUTHBEARER), RFC 4013 §3 (SASLprep). No socket: each test drives step().
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { verifyPassword } from '../password.js';
import type { UserRecord } from '../directory.js';
import { makeCredentials } from '../credentials.js';
import { formatScramKeys, ntHash, parseScramKeys, scramKeys } from '../schemes.js';
import { cramContexts } from '../md5-context.js';
import { cramDigest, cramMd5 } from './cram-md5.js';
import { login } from './login.js';
import type { ExchangeEnv, SaslStep } from './mechanism.js';
import { challengeMessage, ntlm, ntowfv2, ntProofStr, parseAuthenticate, targetInfo, verifyNtlmv2 } from './ntlm.js';
import { oauthbearer, parseOauthbearer, parseXoauth2, xoauth2 } from './oauth.js';
import type { TokenVerifier } from './token-verifier.js';
import { plain } from './plain.js';
import { saslprep } from './saslprep.js';
import { parseClientFirst, startScram } from './scram.js';

function env(records: UserRecord[], passwords: Record<string, string> = {}): ExchangeEnv {
  const byName = new Map(records.map((r) => [r.name, r]));
  return {
    penalty: async () => undefined,
    lookup: async (n) => byName.get(n),
    verifyPassword: async (n, p) => (passwords[n] === p ? byName.get(n) : undefined),
    hostname: 'test.example',
    serverSecret: Buffer.alloc(32, 7),
    peer: undefined,
    tokens: undefined,
  };
}

const text = (s: SaslStep): string => {
  assert.equal(s.kind, 'challenge');
  return (s as { data: Buffer }).data.toString('utf8');
};

describe('SCRAM-SHA-256', () => {
  it('R-X4 RFC 7677 §3 example: server-first, proof accepted, server signature as published', async () => {
    // RFC 7677 §3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
    const keys = await scramKeys(Buffer.from('pencil'), Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096);
    const record: UserRecord = { name: 'user', password: '', grants: [], credentials: { poplar_scram: formatScramKeys(keys) } };
    const x = startScram(env([record]), () => '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0');
    const first = await x.step(Buffer.from('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'));
    assert.equal(text(first), 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
    const final = await x.step(Buffer.from(
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    ));
    assert.equal(text(final), 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
    const done = await x.step(Buffer.alloc(0));
    assert.equal(done.kind, 'success');
  });

  it('R-S13 SCRAM: a wrong proof fails, and an unknown user gets a salt as stable as a real one', async () => {
    const keys = await scramKeys(Buffer.from('pencil'), Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096);
    const record: UserRecord = { name: 'user', password: '', grants: [], credentials: { poplar_scram: formatScramKeys(keys) } };
    const e = env([record]);
    const x = startScram(e, () => 'srv');
    await x.step(Buffer.from('n,,n=user,r=abc'));
    const bad = await x.step(Buffer.from('c=biws,r=abcsrv,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ='));
    assert.equal(bad.kind, 'failure');
    const ghost1 = text(await startScram(e, () => 'srv').step(Buffer.from('n,,n=ghost,r=abc')));
    const ghost2 = text(await startScram(e, () => 'srv').step(Buffer.from('n,,n=ghost,r=abc')));
    assert.equal(ghost1, ghost2);
    assert.match(ghost1, /^r=abcsrv,s=[A-Za-z0-9+/]{22}==,i=4096$/);
  });

  it('R-X5 SCRAM keys are made from the SASLprep\'d password, as clients compute them (RFC 5802 §2.2)', async () => {
    const made = await makeCredentials('I\u00adX\u2168', { cost: 10, needs: { scram: true, nt: false, cram: false, secret: false } });
    const stored = parseScramKeys(made.credentials.poplar_scram!)!;
    assert.deepEqual(stored.storedKey, (await scramKeys(Buffer.from('IXIX'), stored.salt, stored.iterations)).storedKey);
  });

  it('R-X4 SCRAM refuses channel binding it does not offer, and parses authzid and escaped names', () => {
    assert.equal(parseClientFirst('p=tls-exporter,,n=user,r=abc'), 'channel binding is not offered');
    const p = parseClientFirst('n,a=bob=2Cjr,n=al=3Dice,r=abc');
    assert.ok(typeof p !== 'string');
    assert.equal(p.user, 'al=ice');
    assert.equal(p.authzid, 'bob,jr');
    assert.equal(typeof parseClientFirst('n,,n=bad=name,r=abc'), 'string');
  });
});

describe('CRAM-MD5', () => {
  it('R-X4 RFC 2195 §2 example digest', () => {
    assert.equal(
      cramDigest(Buffer.from('tanstaaftanstaaf'), '<1896.697170952@postoffice.reston.mci.net>'),
      'b913a602c7eda7a495b4e6e7334d3890',
    );
  });

  it('R-X4 CRAM-MD5 succeeds with stored contexts, a Dovecot {CRAM-MD5} field or a shared secret, and fails without', async () => {
    const key = Buffer.from('tanstaaftanstaaf');
    const tim: UserRecord = { name: 'tim', password: '', grants: [], credentials: { poplar_cram: cramContexts(key).toString('hex') } };
    const dove: UserRecord = { name: 'dove', password: `{CRAM-MD5}${cramContexts(key).toString('hex')}`, grants: [] };
    const sec: UserRecord = { name: 'sec', password: '', grants: [], credentials: { poplar_secret: key.toString('base64') } };
    const nosecret: UserRecord = { name: 'ann', password: '{SCRYPT}x', grants: [] };
    for (const [record, expected] of [[tim, 'success'], [dove, 'success'], [sec, 'success'], [nosecret, 'failure']] as const) {
      const x = cramMd5.start(env([record]));
      const c = text(await x.step(undefined));
      assert.match(c, /^<[0-9a-f]+\.\d+@test\.example>$/);
      const r = await x.step(Buffer.from(`${record.name} ${cramDigest(Buffer.from('tanstaaftanstaaf'), c)}`));
      assert.equal(r.kind, expected);
    }
  });
});

describe('NTLM', () => {
  // MS-NLMP §4.2.4: User "User", domain "Domain", password "Password", server challenge
  // 0123456789abcdef, client challenge aa×8, time 0, target info NbDomainName "Domain" + NbComputerName "Server".
  const serverChallenge = Buffer.from('0123456789abcdef', 'hex');
  const info = targetInfo('Domain', 'Server');
  const temp = Buffer.concat([
    Buffer.from('0101000000000000', 'hex'), Buffer.alloc(8), Buffer.alloc(8, 0xaa), Buffer.alloc(4), info, Buffer.alloc(4),
  ]);

  it('R-S9 MS-NLMP §4.2.4 NTOWFv1, NTOWFv2 and NTProofStr test vectors', async () => {
    const nt = await ntHash('Password');
    assert.equal(nt.toString('hex'), 'a4f49c406510bdcab6824ee7c30fd852');
    const owf = ntowfv2(nt, 'User', 'Domain');
    assert.equal(owf.toString('hex'), '0c868a403bfd7a93a3001ef22ef02e3f');
    assert.equal(ntProofStr(owf, serverChallenge, temp).toString('hex'), '68cd0ab851e51c96aabc927bebef6a1c');
    const response = Buffer.concat([Buffer.from('68cd0ab851e51c96aabc927bebef6a1c', 'hex'), temp]);
    assert.ok(verifyNtlmv2(nt, 'User', 'Domain', serverChallenge, response));
    assert.ok(!verifyNtlmv2(await ntHash('password'), 'User', 'Domain', serverChallenge, response));
  });

  it('R-S9 the CHALLENGE message carries the server challenge and target info; NTLMv1 answers are refused', async () => {
    const msg = challengeMessage(serverChallenge, 'POPLAR', info);
    assert.equal(msg.subarray(0, 8).toString('latin1'), 'NTLMSSP\0');
    assert.equal(msg.readUInt32LE(8), 2);
    assert.deepEqual(msg.subarray(24, 32), serverChallenge);
    assert.ok(msg.readUInt32LE(20) & 0x00800000, 'NEGOTIATE_TARGET_INFO');

    const record: UserRecord = { name: 'User', password: '', grants: [], credentials: { poplar_nt: (await ntHash('Password')).toString('hex') } };
    const x = ntlm.start(env([record]));
    assert.equal(text(await x.step(undefined)), '');
    const negotiate = Buffer.alloc(32);
    Buffer.from('NTLMSSP\0', 'latin1').copy(negotiate);
    negotiate.writeUInt32LE(1, 8);
    assert.equal((await x.step(negotiate)).kind, 'challenge');
    const v1 = authenticateMessage(Buffer.alloc(24, 1), 'User', 'Domain');
    const r = await x.step(v1);
    assert.equal(r.kind, 'failure');
    assert.match((r as { reason: string }).reason, /NTLMv1/);
    assert.deepEqual(parseAuthenticate(v1)?.user, 'User');
  });
});

/** An AUTHENTICATE_MESSAGE (Unicode) with the given NT response. */
function authenticateMessage(nt: Buffer, user: string, domain: string): Buffer {
  const fields = [Buffer.alloc(24), nt, Buffer.from(domain, 'utf16le'), Buffer.from(user, 'utf16le'), Buffer.alloc(0)];
  const header = Buffer.alloc(64);
  Buffer.from('NTLMSSP\0', 'latin1').copy(header);
  header.writeUInt32LE(3, 8);
  let off = 64;
  fields.forEach((f, i) => {
    header.writeUInt16LE(f.length, 12 + i * 8);
    header.writeUInt16LE(f.length, 14 + i * 8);
    header.writeUInt32LE(off, 16 + i * 8);
    off += f.length;
  });
  header.writeUInt32LE(1, 60);
  return Buffer.concat([header, ...fields]);
}

describe('PLAIN and LOGIN', () => {
  const alice: UserRecord = { name: 'alice', password: '', grants: [] };
  const e = env([alice], { alice: 'wonderland' });

  it('R-S9 PLAIN (RFC 4616): authcid and password, authzid passed on for master users (R-X14)', async () => {
    assert.equal(text(await plain.start(e).step(undefined)), '');
    assert.equal((await plain.start(e).step(Buffer.from('\0alice\0wonderland'))).kind, 'success');
    const as = await plain.start(e).step(Buffer.from('bob\0alice\0wonderland'));
    assert.deepEqual(as.kind === 'success' ? as.authzid : undefined, 'bob');
    assert.equal((await plain.start(e).step(Buffer.from('\0alice\0wrong'))).kind, 'failure');
    const bad = await plain.start(e).step(Buffer.from('alice\0wonderland'));
    assert.ok(bad.kind === 'failure' && bad.malformed);
  });

  it('R-X4 LOGIN asks Username: then Password:, with or without initial response', async () => {
    const x = login.start(e);
    assert.equal(text(await x.step(undefined)), 'Username:');
    assert.equal(text(await x.step(Buffer.from('alice'))), 'Password:');
    assert.equal((await x.step(Buffer.from('wonderland'))).kind, 'success');
    const y = login.start(e);
    assert.equal(text(await y.step(Buffer.from('alice'))), 'Password:');
    assert.equal((await y.step(Buffer.from('nope'))).kind, 'failure');
  });
});

describe('bearer token messages', () => {
  it('R-X4 OAUTHBEARER (RFC 7628 §4.1) and XOAUTH2 messages parse; malformed ones do not', () => {
    const ob = parseOauthbearer('n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01');
    assert.deepEqual(ob, { user: 'user@example.com', token: 'vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==' });
    assert.deepEqual(parseOauthbearer('n,,\x01auth=Bearer abc\x01\x01'), { user: undefined, token: 'abc' });
    assert.equal(parseOauthbearer('n,,\x01auth=Basic abc\x01\x01'), undefined);
    assert.deepEqual(parseXoauth2('user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01'), {
      user: 'someuser@example.com',
      token: 'ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg',
    });
    assert.equal(parseXoauth2('user=a\x01auth=Bearer t\x01'), undefined);
  });
});

describe('R-X9 penalty before the credential check', () => {
  it('R-X9 OAUTHBEARER and XOAUTH2 serve the failed-login penalty before the token is verified', async () => {
    for (const [mechanism, message] of [
      [oauthbearer, 'n,a=alice,\x01auth=Bearer tok\x01\x01'],
      [xoauth2, 'user=alice\x01auth=Bearer tok\x01\x01'],
    ] as const) {
      const order: string[] = [];
      const tokens = { verify: async () => (order.push('verify'), { ok: true, user: 'alice' }) } as unknown as TokenVerifier;
      const e: ExchangeEnv = {
        ...env([{ name: 'alice', password: '', grants: [] }]),
        tokens,
        penalty: async (user) => void order.push(`penalty ${user}`),
      };
      const step = await mechanism.start(e).step(Buffer.from(message));
      assert.equal(step.kind, 'success', mechanism.name);
      assert.equal(order[0], 'penalty alice', mechanism.name);
      assert.equal(order[1], 'verify', mechanism.name);
    }
  });
});

describe('SASLprep', () => {
  it('R-X5 RFC 4013 §3 examples', () => {
    assert.equal(saslprep('I\u00adX'), 'IX');
    assert.equal(saslprep('user'), 'user');
    assert.equal(saslprep('USER'), 'USER');
    assert.equal(saslprep('\u00aa'), 'a');
    assert.equal(saslprep('\u2168'), 'IX');
    assert.equal(saslprep('\u0007'), undefined);
    assert.equal(saslprep('\u0627\u0031'), undefined);
    assert.equal(saslprep('pa\u00a0ss'), 'pa ss');
  });
});

/** A SCRAM-SHA-256 exchange as an RFC 5802 client runs it, with `clientPassword` already SASLprep'd by the client. */
async function scramLogin(record: UserRecord, user: string, clientPassword: string): Promise<SaslStep['kind']> {
  const x = startScram(env([record]), () => 'srv');
  const serverFirst = text(await x.step(Buffer.from(`n,,n=${user},r=cli`)));
  const { r, s, i } = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)])) as Record<string, string>;
  const salted = pbkdf2Sync(Buffer.from(clientPassword, 'utf8'), Buffer.from(s!, 'base64'), Number(i), 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const bare = `c=biws,r=${r}`;
  const auth = `n=${user},r=cli,${serverFirst},${bare}`;
  const signature = createHmac('sha256', createHash('sha256').update(clientKey).digest()).update(auth).digest();
  const proof = Buffer.from(clientKey.map((b, k) => b ^ signature[k]!)).toString('base64');
  const final = await x.step(Buffer.from(`${bare},p=${proof}`));
  return final.kind === 'challenge' ? (await x.step(Buffer.alloc(0))).kind : final.kind;
}

const scramRecord = async (name: string, password: string): Promise<UserRecord> => {
  const made = await makeCredentials(password, { cost: 10, needs: { scram: true, nt: false, cram: false, secret: false } });
  return { name, password: '', grants: [], credentials: made.credentials };
};

describe('SASLprep through SCRAM and PLAIN (RFC 4013 §3, RFC 3454 tables)', () => {
  it('R-X5 RFC 4013 §3: SOFT HYPHEN maps to nothing, U+00AA to "a", U+2168 to "IX", in SCRAM and PLAIN', async () => {
    for (const [typed, prepared] of [['I\u00adX', 'IX'], ['\u00aa', 'a'], ['\u2168', 'IX'], ['user', 'user']] as const) {
      // SCRAM: keys made from the typed password; the client proves the prepared one.
      assert.equal(await scramLogin(await scramRecord('u', typed), 'u', prepared), 'success', JSON.stringify(typed));
      // PLAIN against a {SCRAM-SHA-256} password field made from the prepared string.
      const keys = await scramKeys(Buffer.from(prepared), Buffer.alloc(16, 1), 4096);
      assert.equal(await verifyPassword(`{SCRAM-SHA-256}${formatScramKeys(keys)}`, typed), true, JSON.stringify(typed));
    }
    // A SCRAM user name is SASLprep'd before the lookup.
    assert.equal(await scramLogin(await scramRecord('IX', 'pw'), 'I\u00adX', 'pw'), 'success');
  });

  it('R-X5 RFC 4013 §3: U+0007 and U+0627 U+0031 (bidi) are errors, and the string is then used as it is', async () => {
    for (const bad of ['\u0007', '\u0627\u0031']) {
      assert.equal(saslprep(bad), undefined, JSON.stringify(bad));
      assert.equal(await scramLogin(await scramRecord('u', bad), 'u', bad), 'success', JSON.stringify(bad));
      const keys = await scramKeys(Buffer.from(bad), Buffer.alloc(16, 1), 4096);
      assert.equal(await verifyPassword(`{SCRAM-SHA-256}${formatScramKeys(keys)}`, bad), true, JSON.stringify(bad));
    }
  });

  it('R-X5 RFC 3454 §6 and C.2 by the exact tables: an Arabic-Indic digit is no RandALCat, U+0903 is LCat, U+1D173 is prohibited', async () => {
    // Regression: the script-property approximation refused "1\u0660" (U+0660 is bidi AN, not R/AL), so
    // the stored keys kept the SOFT HYPHEN and a client's SASLprep'd proof failed.
    assert.equal(saslprep('1\u0660\u00ad'), '1\u0660');
    assert.equal(await scramLogin(await scramRecord('u', '1\u0660\u00ad'), 'u', '1\u0660'), 'success');
    // It also let through RandALCat beside an LCat mark, and a prohibited musical format control.
    assert.equal(saslprep('\u05d0\u0903\u05d0'), undefined);
    assert.equal(saslprep('a\u{1d173}'), undefined);
    // Unassigned in Unicode 3.2 is allowed (a login is a query, RFC 3454 §7): an emoji password keeps working.
    assert.equal(saslprep('\u{1f600}pw\u00ad'), '\u{1f600}pw');
  });
});
