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

/** Where the per-user overrides are kept. */
export interface OverrideStore {
  /** For messages: the file's path, or "PostgreSQL". */
  readonly where: string;
  /** Every user with an override; cheap to call often (each implementation caches briefly). */
  load(): Promise<ReadonlyMap<string, UserOverrides>>;
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

