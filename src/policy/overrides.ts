/**
 * The per-user overrides of the server-wide policy (R-S16, R-S18, R-X10): their keys and checks,
 * and the interface of where they are kept (OverrideStore: policy-file.ts, postgres-user-policy.ts).
 */
import { z } from 'zod';
import { byteSize } from './quota.js';

/** Sizes may be written as in the config file and `poplar quota set` (`"100M"`, policy/quota.ts). */
export const overrideSchema = z.strictObject({
  quota_bytes: byteSize(z.number().int().min(0).optional()),
  quota_messages: z.number().int().min(0).optional(),
  retrieved_days: z.number().int().min(0).optional(),
  unretrieved_days: z.number().int().min(0).optional(),
  login_delay: z.number().int().min(0).optional(),
  download_bytes_per_day: byteSize(z.number().int().min(0).optional()),
});

export type UserOverrides = z.infer<typeof overrideSchema>;
export type OverrideKey = keyof UserOverrides;
export const OVERRIDE_KEYS: readonly OverrideKey[] = Object.keys(overrideSchema.shape) as OverrideKey[];

/** Whether any user overrides the retention days (CAPA EXPIRE) or the login delay (CAPA LOGIN-DELAY). */
export interface OverrideVariety {
  readonly expire: boolean;
  readonly loginDelay: boolean;
}

/** Where the per-user overrides are kept; reads are cheap to repeat (each implementation caches briefly). */
export interface OverrideStore {
  /** For messages: the file's path, or "PostgreSQL". */
  readonly where: string;
  /** The overrides of one user, or undefined. */
  get(user: string): Promise<UserOverrides | undefined>;
  /** What the pre-login CAPA marks ` USER` (RFC 2449 §6.5, §6.7). */
  varies(): Promise<OverrideVariety>;
  /** Sets (a number) or removes (null) override keys of one user, atomically; returns the user's overrides. */
  update(user: string, changes: Partial<Record<OverrideKey, number | null>>): Promise<UserOverrides>;
}

/** One user's overrides after `changes`, checked (a ZodError for a bad value). */
export function applyChanges(current: UserOverrides | undefined, changes: Partial<Record<OverrideKey, number | null>>): UserOverrides {
  const next: Record<string, number> = { ...(current ?? {}) };
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) delete next[key];
    else if (value !== undefined) next[key] = value;
  }
  return overrideSchema.parse(next);
}

