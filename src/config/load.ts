/**
 * Loads the effective configuration: TOML file, then `--data`, then `-o key=value` overrides in
 * order, validated by the one schema. Every problem is collected and thrown together as a
 * ConfigError, each naming its dotted key (or file:line:col for TOML syntax errors).
 */
import { readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { configKeys, type KeyInfo } from './keys.js';
import { configSchema, type Config } from './schema.js';

export { parseListen, type ListenAddress } from './listen.js';
export type { Config } from './schema.js';

export interface LoadConfigOptions {
  /** TOML config file; without it every key has its default. */
  file?: string;
  /** `section.key=value`; value is read as a TOML value when it parses as one, else as a string. */
  overrides?: readonly string[];
  /** Sets `server.data_dir`, resolved against the current directory. */
  dataDir?: string;
}

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Levenshtein distance, for "did you mean" hints on typos. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function unknownKey(name: string, candidates: Iterable<string>): string {
  let best: string | undefined;
  let bestD = 3;
  for (const c of candidates) {
    const d = distance(name, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best === undefined ? 'unknown key' : `unknown key (did you mean "${best}"?)`;
}

/** Reads `text` as one TOML value, or reports that it is not one. */
function tomlValue(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    const t = parseToml(`v = ${text}`);
    return Object.keys(t).length === 1 ? { ok: true, value: t['v'] } : { ok: false };
  } catch {
    return { ok: false };
  }
}

function overrideValue(info: KeyInfo, text: string): unknown {
  const parsed = tomlValue(text);
  switch (info.kind) {
    case 'string':
    case 'enum':
      return parsed.ok && typeof parsed.value === 'string' ? parsed.value : text;
    case 'string[]':
      if (parsed.ok && Array.isArray(parsed.value)) return parsed.value;
      return [parsed.ok && typeof parsed.value === 'string' ? parsed.value : text];
    default:
      return parsed.ok ? parsed.value : text;
  }
}

function readFile(file: string, problems: string[]): Table {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    problems.push(`${file}: cannot read config file (${e.code ?? e.message})`);
    return {};
  }
  try {
    return parseToml(text, { unsafeKeyBehaviour: 'throw' }) as Table;
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const msg = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    problems.push(`${file}:${err.line}:${err.column}: TOML syntax error: ${msg}`);
    return {};
  }
}

function issueProblems(issues: readonly z.core.$ZodIssue[]): string[] {
  const keys = configKeys();
  const name = (path: readonly PropertyKey[]): string =>
    path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
  return issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => {
        const siblings = issue.path.length === 0
          ? [...new Set([...keys.values()].map((i) => i.section))]
          : [...keys.values()].filter((i) => i.section === issue.path[0]).map((i) => i.key);
        return `${name([...issue.path, k])}: ${unknownKey(k, siblings)}`;
      });
    }
    const got = issue.input === undefined || typeof issue.input === 'object' || issue.code === 'custom'
      ? ''
      : ` (got ${JSON.stringify(issue.input)})`;
    return [`${issue.path.length ? name(issue.path) : '(top level)'}: ${issue.message}${got}`];
  });
}

/**
 * The effective configuration. Paths (every key the schema marks `path: true`, e.g.
 * `server.data_dir`, `auth.users_file`, `storage.maildir_path`) come back absolute with
 * `{data_dir}` expanded; relative paths from the file resolve against the file's directory, those
 * from `--data`/`-o` against the current directory. An empty `pop3.hostname` becomes the system
 * host name.
 */
export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const problems: string[] = [];
  const cwd = process.cwd();
  const file = opts.file === undefined ? undefined : resolve(cwd, opts.file);
  const raw: Table = file === undefined ? {} : readFile(file, problems);
  const fromCli = new Set<string>();
  const keys = configKeys();

  const set = (dotted: string, value: unknown, label: string): void => {
    const info = keys.get(dotted);
    if (!info) {
      problems.push(`${label} ${dotted}: ${unknownKey(dotted, keys.keys())}`);
      return;
    }
    const section = raw[info.section] ?? (raw[info.section] = {});
    if (!isTable(section)) {
      problems.push(`${info.section}: must be a table to set ${dotted}`);
      return;
    }
    section[info.key] = typeof value === 'string' ? overrideValue(info, value) : value;
    fromCli.add(dotted);
  };

  if (opts.dataDir !== undefined) set('server.data_dir', resolve(cwd, opts.dataDir), '--data');
  for (const o of opts.overrides ?? []) {
    const eq = o.indexOf('=');
    if (eq <= 0) problems.push(`-o "${o}": expected section.key=value`);
    else set(o.slice(0, eq).trim(), o.slice(eq + 1), '-o');
  }

  const result = configSchema.safeParse(raw, { reportInput: true });
  if (!result.success) problems.push(...issueProblems(result.error.issues));
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);

  const config = result.data;
  const baseOf = (dotted: string): string =>
    file !== undefined && !fromCli.has(dotted) ? dirname(file) : cwd;
  const dataDir = resolve(baseOf('server.data_dir'), config.server.data_dir);
  config.server.data_dir = dataDir;
  // Every other key the schema marks `path: true` (keys.ts KeyInfo.path): `{data_dir}` expanded,
  // made absolute; an empty value (a file that is off, e.g. `server.pid_file`) stays empty.
  const sections = config as unknown as Record<string, Record<string, unknown>>;
  for (const info of keys.values()) {
    if (!info.path || info.dotted === 'server.data_dir') continue;
    const section = sections[info.section]!;
    const value = section[info.key];
    if (typeof value !== 'string') throw new Error(`config schema: path key ${info.dotted} is not a string`);
    if (value !== '') section[info.key] = resolve(baseOf(info.dotted), value.replaceAll('{data_dir}', dataDir));
  }
  if (config.pop3.hostname === '') config.pop3.hostname = osHostname();
  return config;
}
