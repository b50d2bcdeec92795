/** What the admin API's routes work with (R-X21), built by cli/serve.ts (or a test). */
import type { AdminDirectory } from '../auth/directory.js';
import type { Logger } from '../observability/logger.js';
import type { UserPolicies } from '../policy/user-policy.js';
import type { MailStore } from '../storage/mail-store.js';
import type { Activity, FailedLogins, LiveSessions } from './sources.js';

export interface AdminContext {
  readonly sessions: LiveSessions;
  readonly failures: FailedLogins;
  readonly activity: Activity;
  readonly directory: AdminDirectory;
  readonly policies: UserPolicies;
  readonly store: MailStore;
  /** The stored credential and `poplar_*` extra fields for a new password, as `poplar user` makes them. */
  readonly hashPassword: (password: string) => Promise<{ password: string; credentials: Readonly<Record<string, string>> }>;
  readonly logger: Logger;
}
