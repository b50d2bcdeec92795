/**
 * Real clients from python3's standard library: smtplib.LMTP for deliveries (reading one DATA
 * reply per accepted recipient, as RFC 2033 §4.2 requires; smtplib's sendmail() reads only one)
 * and poplib for fetching. Messages travel base64-encoded so every byte is compared.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

const LMTP_SCRIPT = String.raw`
import base64, json, smtplib, sys
spec = json.loads(sys.stdin.read())
l = smtplib.LMTP('127.0.0.1', int(sys.argv[1]), local_hostname='client.example', timeout=30)
code, resp = l.ehlo()
out = {'lhlo': [code, resp.decode()], 'features': l.esmtp_features, 'deliveries': []}
for d in spec['deliveries']:
    mcode, mresp = l.mail(d['from'], d.get('options', []))
    rcpt = []
    for r in d['to']:
        c, m = l.rcpt(r)
        rcpt.append([c, m.decode()])
    accepted = sum(1 for c, _ in rcpt if c == 250)
    data = []
    if accepted and mcode == 250:
        c, m = l.data(base64.b64decode(d['message']))
        data.append([c, m.decode()])
        for _ in range(accepted - 1):
            c, m = l.getreply()
            data.append([c, m.decode()])
    else:
        l.rset()
    out['deliveries'].append({'mail': [mcode, mresp.decode()], 'rcpt': rcpt, 'data': data})
l.quit()
print(json.dumps(out))
`;

const POP_SCRIPT = String.raw`
import base64, json, poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=30)
p.user(sys.argv[2])
p.pass_(sys.argv[3])
out = {'capa': {k: v for k, v in p.capa().items()}, 'uidl': [], 'list': [], 'messages': []}
out['uidl'] = [l.decode() for l in p.uidl()[1]]
out['list'] = [l.decode() for l in p.list()[1]]
for i in range(1, p.stat()[0] + 1):
    resp, lines, octets = p.retr(i)
    out['messages'].append({'resp': resp.decode(), 'octets': octets, 'b64': base64.b64encode(b''.join(x + b'\r\n' for x in lines)).decode()})
p.quit()
print(json.dumps(out))
`;

export interface LmtpReply {
  0: number;
  1: string;
}

export interface LmtpTransaction {
  readonly from: string;
  readonly to: readonly string[];
  readonly message: Buffer;
  /** MAIL FROM parameters, e.g. ['SIZE=1000']. */
  readonly options?: readonly string[];
}

export interface LmtpResult {
  readonly lhlo: LmtpReply;
  readonly features: Record<string, string>;
  readonly deliveries: { mail: LmtpReply; rcpt: LmtpReply[]; data: LmtpReply[] }[];
}

/** One LMTP session with python3's smtplib.LMTP: LHLO, then each transaction. */
export async function lmtpSend(port: number, deliveries: readonly LmtpTransaction[]): Promise<LmtpResult> {
  const spec = { deliveries: deliveries.map((d) => ({ ...d, message: d.message.toString('base64') })) };
  const child = run('python3', ['-c', LMTP_SCRIPT, String(port)], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  child.child.stdin!.end(JSON.stringify(spec));
  return JSON.parse((await child).stdout) as LmtpResult;
}

export interface PopResult {
  readonly capa: Record<string, string[]>;
  readonly uidl: string[];
  readonly list: string[];
  /** Each message as poplib reconstructs it: lines joined with CRLF (dots unstuffed). */
  readonly messages: { resp: string; octets: number; bytes: Buffer }[];
}

/** Logs in with python3's poplib, reads CAPA, UIDL, LIST and RETRs every message, then QUITs. */
export async function popFetch(port: number, user: string, password: string): Promise<PopResult> {
  const { stdout } = await run('python3', ['-c', POP_SCRIPT, String(port), user, password], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  const raw = JSON.parse(stdout) as Omit<PopResult, 'messages'> & { messages: { resp: string; octets: number; b64: string }[] };
  return { ...raw, messages: raw.messages.map((m) => ({ resp: m.resp, octets: m.octets, bytes: Buffer.from(m.b64, 'base64') })) };
}
