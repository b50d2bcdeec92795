/**
 * Connection caps of R-X9, as Exchange has them: in total (MaxConnections), per remote IP
 * (MaxConnectionFromSingleIP) and per user (MaxConnectionsPerUser, 16 by default). The listener
 * asks `admit` before a session starts (net/listener.ts); a login asks `acquireUser`
 * (commands/login.ts); the session gives its user slot back when it ends. Caps may change on
 * reload; sessions already admitted are never dropped for it.
 *
 * They live here with the other limits that count at run time (poll-limits.ts: LOGIN-DELAY and
 * the daily download cap); fixed numbers live in protocol/limits.ts, the admin's values in
 * config/schema.ts (`pop3.max_connections*`).
 *
 * ConnectionCaps is the interface callers see; it is the connection-cap part of the shared state
 * (src/shared/shared-state.ts, R-X16). `LocalConnectionCaps` counts in this process; across
 * workers the primary counts (`IpcSharedState`), and a count across hosts implements the same
 * interface: taking a slot is asynchronous and may reject when the shared count cannot be
 * reached, and the callers then refuse (fail closed: `-ERR [SYS/TEMP]`); giving a slot back
 * never throws (such an implementation logs and lets its lease expire).
 */
import { LocalSharedState } from '../shared/local-state.js';

export { UNLIMITED, type Admission, type ConnectionCaps, type LimitSettings } from '../shared/shared-state.js';

/** The caps counted in this process's memory (one process serves every connection). */
export class LocalConnectionCaps extends LocalSharedState {}
