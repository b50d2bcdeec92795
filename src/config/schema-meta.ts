/** The metadata every key of the schema carries (config/schema.ts), and the shared key types. */
import { z } from 'zod';
import { tryParseListen } from './listen.js';

/** Metadata every key carries; read back by docgen through `schema.meta()`. */
export type KeyMeta = {
  description: string;
  requirements?: string[];
  /** The value is a file system path: relative paths are resolved, `{data_dir}` is expanded. */
  path?: boolean;
  /** The value is a secret (a password): `poplar config show` prints it masked, nothing logs it. */
  secret?: boolean;
};

export const meta = (m: KeyMeta): KeyMeta => m;

export const listenAddress = z.string().superRefine((s, ctx) => {
  const r = tryParseListen(s);
  if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
});
