// Option parsers shared by the subcommands.
import { InvalidArgumentError } from 'commander';
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
