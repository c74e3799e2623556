// Debian's native Binaryen (`apt-get install binaryen`: wasm-opt, multithreaded)
// for the Asyncify pass, several times faster than the npm binaryen.js build.
// ROAM_WASM_OPT=/path/to/wasm-opt picks another one; ROAM_WASM_OPT=off never uses it.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BLOCKING_IMPORTS } from './prepare.js';

/** The oldest wasm-opt whose Asyncify roam has been tested with (Debian bookworm's). */
const MIN_VERSION = 108;

/** wasm-opt's flags for roam's WASM features (memory/features.ts). */
const FEATURE_FLAGS = [
  '--enable-mutable-globals',
  '--enable-bulk-memory',
  '--enable-sign-ext',
  '--enable-nontrapping-float-to-int',
  '--enable-simd',
  '--enable-multivalue',
];

let found: { bin: string; label: string } | null | undefined;

/** `wasm-opt N` when a usable native wasm-opt is installed, else null (looked up once). */
export function nativeWasmOpt(): string | null {
  if (found === undefined) found = lookUp();
  return found ? found.label : null;
}

function lookUp(): { bin: string; label: string } | null {
  const want = process.env.ROAM_WASM_OPT;
  if (want === 'off' || want === '0') return null;
  const bin = want || 'wasm-opt';
  try {
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    const v = /version\s+(\d+)/.exec(out);
    if (!v || Number(v[1]) < MIN_VERSION) return null;
    return { bin, label: `wasm-opt ${v[1]}` };
  } catch {
    return null;
  }
}

/**
 * Asyncify `pre` with the native wasm-opt, at optimize level 1 (Asyncify then
 * cleans up the functions it rewrote), keeping names. `only`: the functions to rewrite.
 */
export async function asyncifyNative(
  label: string,
  pre: Uint8Array,
  only: string[] | null,
): Promise<Uint8Array> {
  if (!found || found.label !== label) throw new Error(`internal error: ${label} not found`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roam-prepare-'));
  try {
    const input = path.join(dir, 'in.wasm'),
      output = path.join(dir, 'out.wasm'),
      list = path.join(dir, 'only.txt');
    fs.writeFileSync(input, pre);
    const args = [
      input,
      ...FEATURE_FLAGS,
      '-ol',
      '1',
      '-g',
      '--asyncify',
      `--pass-arg=asyncify-imports@${BLOCKING_IMPORTS.join(',')}`,
    ];
    if (only) {
      // A response file (wasm-opt reads `@@FILE`): a big module's list is too long for argv.
      fs.writeFileSync(list, only.join(','));
      args.push(`--pass-arg=asyncify-onlylist@@${list}`);
    }
    args.push('-o', output);
    await new Promise<void>((resolve, reject) =>
      execFile(found!.bin, args, { maxBuffer: 16 << 20 }, (err, _out, stderr) => {
        if (err)
          reject(new Error(`${label} failed on the module: ${stderr.trim() || err.message}`));
        else resolve();
      }),
    );
    return fs.readFileSync(output);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
