/** poplar's public API: start a server from parts, and the types to supply them. */
export { startServer, type PoplarServer, type PoplarServerOptions } from './server.js';
export type { SessionSettings } from './session/context.js';
export type {
  DeliverOptions, ExpireResult, ExpiryCandidate, MailStore, MaildropSnapshot, MessageInfo, Usage,
} from './storage/mail-store.js';
export type { UserDirectory, UserRecord } from './auth/directory.js';
export { Pop3Error } from './errors.js';
export type { Admission, ConnectionCaps, LimitSettings } from './policy/connection-caps.js';
