/**
 * A flat list of the config keys read back from the schema through zod's public JSON Schema
 * export (`z.toJSONSchema`), so that overrides and docgen never keep a second list of keys.
 */
import { z } from 'zod';
import { RESTART_KEYS } from './restart-keys.js';
import { configSchema } from './schema.js';

export type KeyKind = 'string' | 'integer' | 'boolean' | 'enum' | 'string[]' | 'integer[]';

export interface KeyInfo {
  readonly section: string;
  readonly key: string;
  /** `section.key`, as used by `-o` and in error messages. */
  readonly dotted: string;
  readonly kind: KeyKind;
  readonly default: unknown;
  readonly minimum: number | undefined;
  readonly maximum: number | undefined;
  readonly choices: readonly string[] | undefined;
  readonly description: string;
  readonly requirements: readonly string[];
  readonly path: boolean;
  /** A secret (schema-meta.ts KeyMeta.secret): shown masked. */
  readonly secret: boolean;
  /** Why a reload does not apply this key (restart-keys.ts); undefined: a reload applies it. */
  readonly restart: string | undefined;
}

export interface SectionInfo {
  readonly name: string;
  readonly description: string;
  readonly keys: readonly KeyInfo[];
}

interface JsonNode {
  type?: string;
  description?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  enum?: string[];
  items?: JsonNode;
  properties?: Record<string, JsonNode>;
  requirements?: string[];
  path?: boolean;
  secret?: boolean;
}

function kindOf(n: JsonNode): KeyKind {
  if (n.enum) return 'enum';
  if (n.type === 'array') return n.items?.type === 'integer' ? 'integer[]' : 'string[]';
  if (n.type === 'integer' || n.type === 'boolean' || n.type === 'string') return n.type;
  throw new Error(`config schema: unsupported JSON Schema type ${String(n.type)}`);
}

/** Bounds zod reports for "no bound" (safe-integer limits) are dropped. */
const bound = (v: number | undefined): number | undefined =>
  v === undefined || Math.abs(v) >= Number.MAX_SAFE_INTEGER ? undefined : v;

let cached: readonly SectionInfo[] | undefined;

/** Sections and keys in schema order. */
export function configSections(): readonly SectionInfo[] {
  if (cached) return cached;
  const root = z.toJSONSchema(configSchema, { io: 'input' }) as JsonNode;
  cached = Object.entries(root.properties ?? {}).map(([name, sec]) => ({
    name,
    description: sec.description ?? '',
    keys: Object.entries(sec.properties ?? {}).map(([key, n]) => ({
      section: name,
      key,
      dotted: `${name}.${key}`,
      kind: kindOf(n),
      default: n.default,
      minimum: bound(n.minimum),
      maximum: bound(n.maximum),
      choices: n.enum,
      description: n.description ?? '',
      requirements: n.requirements ?? [],
      path: n.path === true,
      secret: n.secret === true,
      restart: (RESTART_KEYS as Readonly<Record<string, string>>)[`${name}.${key}`],
    })),
  }));
  return cached;
}

/** Every key by its dotted name. */
export function configKeys(): ReadonlyMap<string, KeyInfo> {
  return new Map(configSections().flatMap((s) => s.keys.map((k) => [k.dotted, k] as const)));
}
