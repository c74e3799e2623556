// Third-party programs as test guests: built at test time by
// scripts/build-guests.sh into .guests/ (never committed), or null with the
// reason when the WASI toolchain is not installed, so a test can skip.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './helpers.js';

export const GUESTS = path.join(ROOT, '.guests');
let built: { ok: boolean; why: string } | null = null;

/** The path of guest `name` (e.g. 'sqlite-speed'), building the guests first if needed. */
export function guest(name: string): { path: string | null; why: string } {
  const file = path.join(GUESTS, `${name}.wasm`);
  built ??= (() => {
    const r = spawnSync('bash', [path.join(ROOT, 'scripts/build-guests.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (r.status === 0) return { ok: true, why: '' };
    const why = (r.stderr || r.stdout).trim().split('\n').pop() ?? `exit ${r.status}`;
    // 3: no WASI toolchain here; anything else is a failure the test must report.
    if (r.status === 3) return { ok: false, why };
    throw new Error(`scripts/build-guests.sh failed (exit ${r.status}): ${r.stderr}`);
  })();
  if (!built.ok) return { path: null, why: built.why };
  if (!fs.existsSync(file)) throw new Error(`scripts/build-guests.sh did not build ${file}`);
  return { path: file, why: '' };
}

/** Run `program` under node:wasi in a child process, with `root` as its "/". */
export function nodeWasi(
  program: string,
  args: string[],
  root: string,
): { code: number; stdout: string; stderr: string; ms: number } {
  const r = spawnSync(
    process.execPath,
    ['--no-warnings', path.join(ROOT, 'dist/test/node-wasi.js'), '--dir', root, program, ...args],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  const ms = Number(/node-wasi: compile\+run ([\d.]+)/.exec(r.stderr)?.[1] ?? NaN);
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr, ms };
}
