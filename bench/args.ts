/**
 * Command-line options of the bench tools: `--key value`, `--key=value` and bare `--flag`
 * (true). Positional arguments are kept in order. No dependency: bench/ stays runnable with tsc.
 */
export interface Args {
  readonly positional: string[];
  str(name: string, def: string): string;
  num(name: string, def: number): number;
  flag(name: string): boolean;
  has(name: string): boolean;
}

export function parseArgs(argv: readonly string[]): Args {
  const values = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    if (eq > 0) values.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) values.set(a.slice(2), argv[++i]!);
    else values.set(a.slice(2), 'true');
  }
  return {
    positional,
    str: (name, def) => values.get(name) ?? def,
    num: (name, def) => {
      const v = values.get(name);
      if (v === undefined) return def;
      const n = Number(v);
      if (!Number.isFinite(n)) throw new Error(`--${name}: not a number: ${v}`);
      return n;
    },
    flag: (name) => values.get(name) === 'true',
    has: (name) => values.has(name),
  };
}
