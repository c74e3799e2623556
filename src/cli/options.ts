// Option parsers shared by the subcommands: commander wrappers around the one
// quantity parser (src/util/quantity.ts). Commander names the flag in front of
// each message ("option '--memory <size>' argument 'x' is invalid. expected ...").
import { InvalidArgumentError } from 'commander';
import {
  parseBandwidth,
  parseDuration,
  parseInteger,
  parseSize,
  type SizeUnit,
  type TimeUnit,
} from '../util/quantity.js';
export const collect = (v: string, acc: string[]): string[] => [...acc, v];

/** Runs a parser, turning its refusal into commander's (which names the flag). */
const asOption =
  <T>(parse: (v: string) => T) =>
  (v: string): T => {
    try {
      return parse(v);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };

export function parseDir(spec: string): { host: string; guest: string } {
  const i = spec.indexOf('::');
  const [host, guest] = i < 0 ? [spec, spec] : [spec.slice(0, i), spec.slice(i + 2)];
  if (!host || !guest.startsWith('/'))
    throw new InvalidArgumentError(
      `expected HOST::GUEST with an absolute guest path, e.g. ./data::/data (got "${spec}").`,
    );
  return { host, guest };
}

export function parseEnv(spec: string): string {
  if (!/^[^=]+=/.test(spec)) throw new InvalidArgumentError(`expected NAME=VALUE (got "${spec}").`);
  return spec;
}

/** A whole number in min..max (counts, rounds, prices). */
export const integer = (min = 0, max = Number.MAX_SAFE_INTEGER) =>
  asOption((v) => parseInteger(v, min, max));

/** A size in `unit` (256M, 1G; a bare number is `unit`), for --memory, --disk, --capacity. */
export const size = (unit: SizeUnit = 'MiB') => asOption((v) => parseSize(v, unit));

/** A whole size in `unit`, for flags whose value goes on the wire as an integer. */
export const wholeSize = (unit: SizeUnit = 'MiB') =>
  asOption((v) => {
    const n = parseSize(v, unit);
    if (!Number.isInteger(n))
      throw new InvalidArgumentError(`expected a whole number of ${unit}, e.g. 256M or 1G.`);
    return n;
  });

/** A duration in `unit` (20ms, 5s, 2m, 1h; a bare number is `unit`). */
export const duration = (unit: TimeUnit, o: { allowZero?: boolean; max?: number } = {}) =>
  asOption((v) => {
    const n = parseDuration(v, unit, o);
    if (o.max !== undefined && n > o.max)
      throw new InvalidArgumentError(`expected at most ${o.max} ${unit === 's' ? 's' : 'ms'}.`);
    return n;
  });

/** A duration in whole seconds (what tokens and leases carry). */
export const seconds = (o: { allowZero?: boolean; max?: number } = {}) =>
  asOption((v) => {
    const n = duration('s', o)(v);
    if (!Number.isInteger(n))
      throw new InvalidArgumentError('expected whole seconds, e.g. 30s, 10m or 600.');
    return n;
  });

/** Milliseconds, for budgets: "20", "20ms", "0.5s". */
export const durationMs = duration('ms');

/** A whole number ≥ 1 (rounds, counts). */
export const positiveInt = integer(1);

/** A positive size in MiB, for --memory and --disk. */
export const positiveMiB = size('MiB');

/** --max-bandwidth and friends: bytes per second. */
export const rate = asOption(parseBandwidth);

/** One of `values`. */
export const choice =
  <T extends string>(values: readonly T[]) =>
  (v: string): T => {
    if (!(values as readonly string[]).includes(v))
      throw new InvalidArgumentError(`expected one of: ${values.join(', ')}.`);
    return v as T;
  };

export { mib } from '../util/units.js';

/** --key and --allow-unsigned of the commands that read a checkpoint file (restore, inspect). */
export const CHECKPOINT_KEY = [
  '--key <file>',
  'key that signed the checkpoint (default: $ROAM_HOME/checkpoint.key when it exists)',
] as const;
export const ALLOW_UNSIGNED = [
  '--allow-unsigned',
  'accept a checkpoint without a valid HMAC under your key (anyone could have written it)',
] as const;

/** The --json flag, for commands whose stdout is their own. */
export const JSON_FLAG = [
  '--json',
  'print the result as JSON; an error as {"event":"error",...}',
] as const;

/** "Examples:" at the end of a command's help, one command a line. */
export function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}`;
}

/** A command's result on stdout: `text`, or under --json one JSON object. */
export function emit(
  json: boolean | undefined,
  event: Record<string, unknown>,
  text: string,
): void {
  process.stdout.write(`${json ? JSON.stringify(event) : text}\n`);
}

/** An http(s) URL, for --broker and --control; HOST:PORT alone means http://HOST:PORT. */
export function httpUrl(v: string): string {
  const s = /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? v : `http://${v}`;
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new InvalidArgumentError(`expected a URL such as http://127.0.0.1:7400 (got "${v}").`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new InvalidArgumentError(`expected an http:// or https:// URL (got "${v}").`);
  return s.replace(/\/+$/, '');
}
