// Option parsers shared by the subcommands.
import { InvalidArgumentError } from 'commander';
import { parseRate } from '../migrate/rate.js';
export const collect = (v: string, acc: string[]): string[] => [...acc, v];

export function parseDir(spec: string): { host: string; guest: string } {
  const i = spec.indexOf('::');
  const [host, guest] = i < 0 ? [spec, spec] : [spec.slice(0, i), spec.slice(i + 2)];
  if (!host || !guest.startsWith('/'))
    throw new Error(
      `bad --dir "${spec}": expected HOST::GUEST with an absolute guest path, e.g. ./data::/data`,
    );
  return { host, guest };
}

export function parseEnv(spec: string): string {
  if (!/^[^=]+=/.test(spec)) throw new Error(`bad --env "${spec}": expected NAME=VALUE`);
  return spec;
}

/** A positive number of MiB, for --memory and --disk. */
export function positiveMiB(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError('expected a positive number of MiB, e.g. 256.');
  return n;
}

/** A whole number ≥ 1 (rounds, counts). Commander names the flag in front of the message. */
export function positiveInt(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError('expected a whole number of at least 1, e.g. 30.');
  return n;
}

/** Milliseconds, for budgets: "20", "20ms", "0.5s". */
export function durationMs(v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$/.exec(v);
  const n = m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : NaN;
  if (!(n > 0)) throw new InvalidArgumentError('expected a positive duration, e.g. 20ms or 0.5s.');
  return n;
}

/** One of `values`. */
export const choice =
  <T extends string>(values: readonly T[]) =>
  (v: string): T => {
    if (!(values as readonly string[]).includes(v))
      throw new InvalidArgumentError(`expected one of: ${values.join(', ')}.`);
    return v as T;
  };

/** --max-bandwidth and friends: the rate parser, as a commander argument error. */
export function rate(v: string): number {
  try {
    return parseRate(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

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
