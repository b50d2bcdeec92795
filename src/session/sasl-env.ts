/**
 * What a SASL mechanism may use on one connection (auth/sasl/mechanism.ts SaslEnv): the
 * directory and password check behind the Authenticator, and the client certificate of the
 * connection's current socket (which STLS replaces), read when a mechanism asks; and for one
 * exchange (ExchangeEnv) the same with the failed-login penalty served before every look-up (R-X9).
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { ExchangeEnv, SaslEnv } from '../auth/sasl/mechanism.js';
import type { SessionServices, SessionSettings } from './context.js';

export function saslEnvFor(services: SessionServices, settings: SessionSettings, socket: () => Socket): SaslEnv {
  const auth = services.authenticator;
  return {
    lookup: (name) => auth.lookup(name),
    verifyPassword: (name, password) => auth.login(name, password),
    hostname: settings.hostname,
    serverSecret: services.serverSecret,
    tokens: services.tokens,
    gssapi: services.gssapi,
    get peer() {
      const s = socket();
      return s instanceof TLSSocket && services.tls !== undefined ? services.tls.peerIdentity(s) : undefined;
    },
  };
}

/** One exchange's env: `serve` (commands/login.ts Penalty) runs before each look-up and password check. */
export function withPenalty(conn: SaslEnv, serve: (user: string | undefined) => Promise<void>): ExchangeEnv {
  return {
    penalty: serve,
    lookup: async (name) => {
      await serve(name);
      return conn.lookup(name);
    },
    verifyPassword: async (name, password) => {
      await serve(name);
      return conn.verifyPassword(name, password);
    },
    hostname: conn.hostname,
    serverSecret: conn.serverSecret,
    tokens: conn.tokens,
    gssapi: conn.gssapi,
    get peer() {
      return conn.peer;
    },
  };
}
