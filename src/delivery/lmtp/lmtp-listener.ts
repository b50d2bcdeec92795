/**
 * The LMTP listener (R-X6, RFC 2033) on nodemailer's smtp-server in LMTP mode: LHLO, MAIL, several
 * RCPT, DATA with one reply per accepted recipient (§4.2), SIZE (RFC 1870), PIPELINING (RFC 2920),
 * 8BITMIME (RFC 6152) and enhanced status codes (RFC 2034). smtp-server parses the protocol; this
 * file maps its hooks onto the DeliveryAgent:
 *
 * - RCPT: unknown user `550 5.1.1`; maildrop already over quota `552 5.2.2` (or `452 4.2.2` with
 *   `quota.over_quota = "defer"`); store failure `451 4.3.0`.
 * - DATA: the message is held in memory (at most `lmtp.max_message_size`, which smtp-server
 *   enforces with `552 5.3.4` per recipient) and delivered to each recipient; each reply is sent
 *   only after MailStore.deliver resolved, i.e. once the message is durable and visible whole.
 *
 * One reply per accepted RCPT (§4.2), duplicates included. smtp-server keeps one envelope entry
 * per address compared case-insensitively (a repeated RCPT replaces the earlier one) and answers
 * DATA once per entry: left alone it answers `RCPT bob` + `RCPT BOB` with two 250s and one DATA
 * reply, and a client waiting for the second defers and delivers again. This file keeps its own list of
 * accepted RCPTs per transaction and hands it to smtp-server as the envelope at DATA; recipients
 * that resolve to the same maildrop get the message once and each get that delivery's reply.
 * Refusals are counted (refusals.ts).
 *
 * LMTP has no authentication here (AUTH and STARTTLS are disabled): bind it to loopback or a
 * trusted network, as Dovecot and Cyrus do.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataResult, type SMTPServerEnvelope, type SMTPServerSession } from 'smtp-server';
import type { ListenAddress } from '../../config/listen.js';
import type { Logger } from '../../observability/logger.js';
import type { DeliveryAgent, DeliveryOutcome, Refusal } from '../agent.js';
import { publishRefusal, reasonOf } from '../refusals.js';

export interface LmtpSettings {
  readonly hostname: string;
  readonly maxMessageSize: number;
  readonly maxRecipients: number;
}

type Reply = Error & { responseCode: number };

/** An Error that smtp-server sends as `<code> <enhanced> <text>` (RFC 3463 codes by reply code). */
function reply(code: number, text: string): Reply {
  return Object.assign(new Error(text), { responseCode: code });
}

/** The reply for a refused recipient: 550 5.1.1, 552 5.2.2 / 452 4.2.2, or 451 4.3.0. */
export function refusalReply(address: string, r: Refusal): Reply {
  switch (r.kind) {
    case 'no-such-user':
      return reply(550, `<${address}>: no such user here`);
    case 'over-quota':
      return r.temporary
        ? reply(452, `<${address}>: mailbox full, try again later`)
        : reply(552, `<${address}>: mailbox full, quota exceeded`);
    case 'failed':
      return reply(451, `<${address}>: temporary failure storing the message, try again later`);
  }
}

/** The reply refusing `address`, counted in the refusal metric (one count per reply sent). */
function refuse(address: string, r: Refusal): Reply {
  publishRefusal('lmtp', reasonOf(r));
  return refusalReply(address, r);
}

/** An RCPT answered 250 and the maildrop its address resolved to then. */
interface Accepted {
  readonly rcpt: SMTPServerAddress;
  readonly mailbox: string;
}

/**
 * The RCPTs answered 250 in this transaction, in order, duplicates included. smtp-server gives
 * each transaction (MAIL … DATA, ended by DATA, RSET or LHLO) a new envelope object, so the list
 * is keyed on it and goes away with it.
 */
const acceptedRcpts = new WeakMap<SMTPServerEnvelope, Accepted[]>();
function accepted(session: SMTPServerSession): Accepted[] {
  let list = acceptedRcpts.get(session.envelope);
  if (list === undefined) acceptedRcpts.set(session.envelope, (list = []));
  return list;
}

export class LmtpListener {
  private readonly servers: { smtp: SMTPServer; address: AddressInfo }[] = [];

  constructor(
    private readonly agent: DeliveryAgent,
    private readonly settings: LmtpSettings,
    private readonly logger: Logger,
  ) {}

  async listen(addresses: readonly ListenAddress[]): Promise<void> {
    for (const a of addresses) {
      const smtp = this.create();
      const net = await new Promise<import('node:net').Server>((resolve, reject) => {
        smtp.once('error', reject);
        const server = smtp.listen(a.port, a.host, () => {
          smtp.off('error', reject);
          resolve(server);
        });
      });
      smtp.on('error', (err) => this.logger.warn({ err, event: 'lmtp_error' }, 'LMTP connection error'));
      const address = net.address() as AddressInfo;
      this.servers.push({ smtp, address });
      this.logger.info({ event: 'listening', protocol: 'lmtp', address: address.address, port: address.port }, 'listening');
    }
  }

  addresses(): AddressInfo[] {
    return this.servers.map((s) => s.address);
  }

  /** Stops accepting; transactions in flight finish (smtp-server's close waits for them). */
  async close(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.smtp.close(() => resolve()))));
    this.servers.length = 0;
  }

  private create(): SMTPServer {
    const { agent, logger } = this;
    const maxRecipients = this.settings.maxRecipients;
    return new SMTPServer({
      lmtp: true,
      name: this.settings.hostname,
      banner: 'poplar',
      size: this.settings.maxMessageSize,
      rejectOversized: true,
      maxRecipients: this.settings.maxRecipients,
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      disableReverseLookup: true,
      hideENHANCEDSTATUSCODES: false, // RFC 2034 codes (5.1.1, 5.2.2, 4.2.2) on every reply
      logger: false,
      closeTimeout: 10_000,
      onRcptTo(address, session, callback) {
        // smtp-server caps distinct addresses; this caps the list of replies owed, repeats included.
        if (accepted(session).length >= maxRecipients) return callback(reply(452, 'Error: too many recipients'));
        const declared = Number((session.envelope.mailFrom && session.envelope.mailFrom.args && session.envelope.mailFrom.args.SIZE) || 0);
        // The maildrop the address resolved to, or why it is refused.
        void (async (): Promise<Refusal | string> => {
          const mailbox = await agent.resolve(address.address);
          if (mailbox === undefined) return { kind: 'no-such-user' };
          return (await agent.admit(mailbox, Number.isFinite(declared) ? declared : 0)) ?? mailbox;
        })().then(
          (outcome) => {
            if (typeof outcome !== 'string') {
              const err = refuse(address.address, outcome);
              logger.info({ event: 'rcpt_refused', rcpt: address.address, reply: err.responseCode }, 'recipient refused');
              return callback(err);
            }
            accepted(session).push({ rcpt: address, mailbox: outcome });
            callback(null);
          },
          (err: unknown) => {
            logger.error({ err, event: 'rcpt_failed', rcpt: address.address }, 'recipient check failed');
            callback(refuse(address.address, { kind: 'failed', error: err }));
          },
        );
      },
      onData(stream, session, callback) {
        // One envelope entry per RCPT answered 250, so that every reply smtp-server sends for this
        // DATA (552 5.3.4 for an oversized message included) is sent once per accepted RCPT.
        const rcpts = accepted(session);
        session.envelope.rcptTo = rcpts.map((a) => a.rcpt);
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => {
          if (!stream.sizeExceeded) chunks.push(chunk);
        });
        stream.on('end', () => {
          if (stream.sizeExceeded) {
            publishRefusal('lmtp', 'too_big', rcpts.length);
            return callback(null); // smtp-server answers 552 5.3.4 per envelope entry
          }
          deliverAll(agent, Buffer.concat(chunks), session, rcpts).then(
            (results) => callback(null, results),
            (error: unknown) => {
              callback(null, rcpts.map((r) => refuse(r.rcpt.address, { kind: 'failed', error })));
            },
          );
        });
      },
    });
  }
}

/**
 * Delivers to every accepted RCPT; one result per RCPT, in RCPT order (RFC 2033 §4.2). Each goes
 * to the maildrop its address resolved to at RCPT (as Dovecot's LMTP keeps the user it looked up
 * at RCPT), so DATA asks the directory nothing. RCPTs that resolved to the same maildrop (`bob`,
 * `BOB`, `bob+x`, or one address twice) share one delivery: the message is stored once and each of
 * them gets its reply.
 */
async function deliverAll(
  agent: DeliveryAgent,
  message: Buffer,
  session: SMTPServerSession,
  rcpts: readonly Accepted[],
): Promise<SMTPServerDataResult[]> {
  const sender = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
  const deliveries = new Map<string, Promise<DeliveryOutcome>>();
  return Promise.all(
    rcpts.map(async ({ rcpt, mailbox }): Promise<SMTPServerDataResult> => {
      let delivery = deliveries.get(mailbox);
      if (delivery === undefined) {
        delivery = agent.deliver(mailbox, message, {
          sender,
          recipient: rcpt.address,
          protocol: 'LMTP',
          heloName: session.hostNameAppearsAs,
          remoteAddress: session.remoteAddress,
        });
        deliveries.set(mailbox, delivery);
      }
      const outcome = await delivery;
      if (outcome.ok) return `<${rcpt.address}> ${outcome.id} Saved as uid ${outcome.uid}`;
      return refuse(rcpt.address, outcome.refusal);
    }),
  );
}
