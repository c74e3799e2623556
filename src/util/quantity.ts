// One parser for the quantities people type into flags: whole numbers, sizes
// (256M, 1G), durations (20ms, 5s, 2m) and bandwidths (100Mbit, 12.5MB). Every
// command's flags go through it (src/cli/options.ts wraps it for commander), so
// `256M` means the same everywhere. A bare number keeps the unit the flag always
// had (MiB for --memory, ms for --max-downtime, seconds for --token-ttl), so
// existing scripts keep working. Each refusal says which forms are allowed.

/** A refused value; the caller names the flag in front of `message`. */
export class QuantityError extends Error {}

const NUMBER = String.raw`(\d+(?:\.\d+)?|\.\d+)`;

/** A whole number in min..max: "30", "1000". */
export function parseInteger(v: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(v.trim());
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new QuantityError(
      `expected a whole number ${max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `in ${min}..${max}`}, e.g. ${Math.max(min, Math.min(30, max))}.`,
    );
  return n;
}

// Sizes are binary (as in free, qemu, docker): M is MiB.
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};
export type SizeUnit = 'B' | 'KiB' | 'MiB' | 'GiB';
const SIZE_OF: Record<SizeUnit, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** A size in `unit`: "256M", "1G", "1.5GiB", "4096K"; a bare number is already in `unit`. More than zero. */
export function parseSize(v: string, unit: SizeUnit): number {
  const m = new RegExp(`^\\s*${NUMBER}\\s*([a-z]*)\\s*$`, 'i').exec(v);
  const scale = m ? (m[2] === '' ? SIZE_OF[unit] : SIZE_UNITS[m[2].toLowerCase()]) : undefined;
  const n = m && scale ? (Number(m[1]) * scale) / SIZE_OF[unit] : NaN;
  if (!(n > 0) || !Number.isFinite(n))
    throw new QuantityError(
      `expected a size such as 256M, 1G or 512K (a bare number is ${unit}), more than zero.`,
    );
  return n;
}

const TIME_UNITS: Record<string, number> = {
  us: 0.001,
  ms: 1,
  s: 1000,
  sec: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
export type TimeUnit = 'ms' | 's';

/** A duration in `unit`: "20ms", "5s", "2m", "1h", "0.5s"; a bare number is already in `unit`. */
export function parseDuration(v: string, unit: TimeUnit, o: { allowZero?: boolean } = {}): number {
  const m = new RegExp(`^\\s*${NUMBER}\\s*([a-z]*)\\s*$`, 'i').exec(v);
  const scale = m ? (m[2] === '' ? TIME_UNITS[unit] : TIME_UNITS[m[2].toLowerCase()]) : undefined;
  const n = m && scale ? (Number(m[1]) * scale) / TIME_UNITS[unit] : NaN;
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !o.allowZero))
    throw new QuantityError(
      `expected a duration such as 20ms, 5s, 2m or 1h (a bare number is ${unit === 's' ? 'seconds' : 'milliseconds'})${o.allowZero ? '' : ', more than zero'}.`,
    );
  return n;
}

// Bandwidths are decimal (as links are sold): 100Mbit is 10^8 bits per second.
const RATE_PREFIX: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9 };

/** Bytes per second: "100Mbit", "1Gbit/s", "12.5MB", "800k" (bytes); a bare number is bytes per second. */
export function parseBandwidth(v: string): number {
  const m = new RegExp(`^\\s*${NUMBER}\\s*([kmg]?)(bit|b)?(?:/s|ps)?\\s*$`, 'i').exec(v);
  const bits = m?.[3] !== undefined && (m[3].toLowerCase() === 'bit' || m[3] === 'b');
  const n = m ? (Number(m[1]) * RATE_PREFIX[m[2].toLowerCase()]) / (bits ? 8 : 1) : NaN;
  if (!(n > 0) || !Number.isFinite(n))
    throw new QuantityError(
      'expected a bandwidth such as 100Mbit, 1Gbit or 12.5MB (per second; b is bits, B bytes), more than zero.',
    );
  return n;
}
