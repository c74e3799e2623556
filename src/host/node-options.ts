// The node daemon's command line: the flags, their defaults and how each is read,
// with node:util's parseArgs (no commander, no help text in the privileged
// process). The CLI builds `roam help node` and docs/cli.md from this same table
// (src/cli/commands/node.ts adds the descriptions), and bin/roam.js sends --help
// there, so the help cannot drift from what the daemon accepts.
import { parseArgs } from 'node:util';

const fail = (flag: string, what: string) => new Error(`option '--${flag}': expected ${what}.`);
export const int = (v: string, flag = 'value'): number => {
  if (/^\d+$/.test(v)) return Number(v);
  throw fail(flag, 'a whole number');
};
// Sizes and durations in the CLI's forms (src/util/quantity.ts), for the units a node uses.
const unitArg =
  (units: Record<string, number>, what: string) =>
  (v: string, flag = 'value') => {
    const m = /^(\d+)\s*([a-z]*)$/.exec(v.trim().toLowerCase());
    if (m && Object.hasOwn(units, m[2])) return Number(m[1]) * units[m[2]];
    throw fail(flag, what);
  };
export const mib = unitArg({ '': 1, m: 1, g: 1024 }, 'MiB: a number, or with M or G (4096, 4G)');
export const secs = unitArg({ '': 1, s: 1, min: 60, h: 3600 }, 'seconds: a number, or s, min, h');

// flag -> [how it is read, default]; `id` and `secret-file` are required.
const READ = { str: (v: string) => v, int, mib, secs, bool: null };
export const NODE_FLAGS = {
  id: ['str'],
  'secret-file': ['str'],
  listen: ['str', '127.0.0.1:7401'],
  capacity: ['mib', '4096'],
  price: ['int', '1'],
  'mem-price': ['int', '1'],
  state: ['str', '/tmp/roam-node'],
  'vm-host': ['str', '127.0.0.1'],
  warm: ['int', '2'],
  grace: ['secs', '10'],
  retention: ['secs', '3600'],
  'topup-budget': ['int', '40000'],
  'vm-overhead': ['mib', '160'],
  'vm-reserve': ['mib', '64'],
  cgroups: ['bool'], // as root: on unless --no-cgroups
  'no-cgroups': ['bool'],
  netns: ['bool'],
  'vm-uid': ['int'],
} as const satisfies Record<string, readonly [keyof typeof READ, string?]>;

// The options as main.ts reads them: camelCase, numbers read, optional when without a default.
type Camel<S> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
type F = typeof NODE_FLAGS;
type Val<K> = K extends 'str' ? string : K extends 'bool' ? boolean : number;
export type NodeOptions = {
  [K in keyof F as F[K] extends readonly [unknown, string] ? Camel<K> : never]: Val<F[K][0]>;
} & {
  [K in keyof F as F[K] extends readonly [unknown] ? Camel<K> : never]?: Val<F[K][0]>;
} & { id: string; secretFile: string };

/** The daemon's options from its arguments; unknown flags and missing values are refused. */
export function parseNodeArgs(args: string[]): NodeOptions {
  const flags = Object.entries(NODE_FLAGS) as [string, readonly [keyof typeof READ, string?]][];
  const { values } = parseArgs({
    args,
    options: Object.fromEntries(
      flags.map(([f, [how]]) => [f, { type: how === 'bool' ? 'boolean' : 'string' }] as const),
    ),
  });
  const o: Record<string, unknown> = {};
  for (const [f, [how, dflt]] of flags) {
    const v = values[f] ?? dflt;
    if (v !== undefined)
      o[f.replace(/-(.)/g, (_, c: string) => c.toUpperCase())] = READ[how]?.(v as string, f) ?? v;
  }
  for (const f of ['id', 'secret-file'])
    if (!values[f]) throw new Error(`required option '--${f}' not specified`);
  if (o.noCgroups) o.cgroups = false;
  return o as unknown as NodeOptions;
}
