/**
 * What a SASL mechanism may use on one connection (auth/sasl/mechanism.ts SaslEnv): the
 * directory and password check behind the Authenticator, and the client certificate of the
 * connection's current socket (which STLS replaces), read when a mechanism asks.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { SaslEnv } from '../auth/sasl/mechanism.js';
import type { SessionServices, SessionSettings } from './context.js';

export function saslEnvFor(services: SessionServices, settings: SessionSettings, socket: () => Socket): SaslEnv {
  const auth = services.authenticator;
  return {
    lookup: (name) => auth.lookup(name),
    verifyPassword: (name, password) => auth.login(name, password),
    hostname: settings.hostname,
    serverSecret: services.serverSecret,
    tokens: services.tokens,
    get peer() {
      const s = socket();
      return s instanceof TLSSocket && services.tls !== undefined ? services.tls.peerIdentity(s) : undefined;
    },
  };
}
