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
 * LMTP has no authentication here (AUTH and STARTTLS are disabled): bind it to loopback or a
 * trusted network, as Dovecot and Cyrus do.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerDataResult, type SMTPServerSession } from 'smtp-server';
import type { ListenAddress } from '../../config/listen.js';
import type { Logger } from '../../observability/logger.js';
import type { DeliveryAgent, Refusal } from '../agent.js';

export interface LmtpSettings {
  readonly hostname: string;
  readonly maxMessageSize: number;
  readonly maxRecipients: number;
}

/** An Error that smtp-server sends as `<code> <enhanced> <text>` (RFC 3463 codes by reply code). */
function reply(code: number, text: string): Error & { responseCode: number } {
  return Object.assign(new Error(text), { responseCode: code });
}

/** The reply for a refused recipient: 550 5.1.1, 552 5.2.2 / 452 4.2.2, or 451 4.3.0. */
export function refusalReply(address: string, r: Refusal): Error & { responseCode: number } {
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
        const declared = Number((session.envelope.mailFrom && session.envelope.mailFrom.args && session.envelope.mailFrom.args.SIZE) || 0);
        void (async () => {
          const mailbox = await agent.resolve(address.address);
          if (mailbox === undefined) return refusalReply(address.address, { kind: 'no-such-user' });
          const refused = await agent.admit(mailbox, Number.isFinite(declared) ? declared : 0);
          return refused === undefined ? undefined : refusalReply(address.address, refused);
        })().then(
          (err) => {
            if (err !== undefined) logger.info({ event: 'rcpt_refused', rcpt: address.address, reply: err.responseCode }, 'recipient refused');
            callback(err ?? null);
          },
          (err: unknown) => {
            logger.error({ err, event: 'rcpt_failed', rcpt: address.address }, 'recipient check failed');
            callback(refusalReply(address.address, { kind: 'failed', error: err }));
          },
        );
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => {
          if (!stream.sizeExceeded) chunks.push(chunk);
        });
        stream.on('end', () => {
          if (stream.sizeExceeded) return callback(null); // smtp-server answers 552 5.3.4 per recipient
          deliverAll(agent, Buffer.concat(chunks), session).then(
            (results) => callback(null, results),
            (error: unknown) => callback(null, session.envelope.rcptTo.map((r) => refusalReply(r.address, { kind: 'failed', error }))),
          );
        });
      },
    });
  }
}

/** Delivers to every accepted recipient; one result per recipient, in RCPT order (RFC 2033 §4.2). */
async function deliverAll(agent: DeliveryAgent, message: Buffer, session: SMTPServerSession): Promise<SMTPServerDataResult[]> {
  const sender = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
  return Promise.all(
    session.envelope.rcptTo.map(async (rcpt): Promise<SMTPServerDataResult> => {
      let mailbox: string | undefined;
      try {
        mailbox = await agent.resolve(rcpt.address);
      } catch (error) {
        return refusalReply(rcpt.address, { kind: 'failed', error }); // the directory failed: 451, retry
      }
      if (mailbox === undefined) return refusalReply(rcpt.address, { kind: 'no-such-user' });
      const outcome = await agent.deliver(mailbox, message, {
        sender,
        recipient: rcpt.address,
        protocol: 'LMTP',
        heloName: session.hostNameAppearsAs,
        remoteAddress: session.remoteAddress,
      });
      return outcome.ok ? `<${rcpt.address}> ${outcome.id} Saved as uid ${outcome.uid}` : refusalReply(rcpt.address, outcome.refusal);
    }),
  );
}
