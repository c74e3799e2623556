// Preparing a module: turn any WASI preview1 module into the two checkpointable
// variants the guest kernel runs, cached on disk by content hash.
//
//  base    = safepoint polls + hidden region + exported globals + Asyncify
//  plain   = optimise(base)                  — runs while no checkpoint is under way
//  tracked = optimise(write barrier(base))   — runs while the page cleaner works
//
// Both come from the same Asyncify output, so a program unwound in one can be
// rewound in the other: the kernel switches variants at a safepoint when a
// checkpoint starts and ends, and the barrier costs nothing the rest of the time.
import binaryen from 'binaryen';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { roamHome } from '../util/home.js';
import { checkSupported, exportMutableGlobals, hideRegion, insertBarrier, insertPolls, ROAM, unwindableFunctions } from './instrument.js';

/** Bump when the instrumentation changes, so stale cache entries are not used. */
export const PREPARE_VERSION = 3;

/** The imports at which a program may block; Asyncify makes only these unwindable. */
export const BLOCKING_IMPORTS = [
  'fd_read', 'fd_write', 'fd_pread', 'fd_pwrite', 'path_open', 'poll_oneoff',
  'sock_accept', 'sock_recv', 'sock_send', 'sched_yield',
].map((n) => `wasi_snapshot_preview1.${n}`).concat(['roam.poll']);

export const ASYNCIFY_BYTES = 65536;

export interface PrepareMeta {
  version: number;
  hash: string;
  /** Wasm pages hidden at the top of memory: the dirty bitmap, then the Asyncify buffer. */
  regionPages: number;
  bitmapBytes: number;
  asyncifyOffset: number;
  asyncifyBytes: number;
  /** The program's own memory limits, in 64 KiB wasm pages. */
  initialPages: number;
  maxPages: number;
  globals: Array<{ name: string; type: string }>;
  unwindable: number;
  functions: number;
  bytes: { original: number; plain: number; tracked: number };
  prepareMs: number;
}

export interface PreparedModule {
  meta: PrepareMeta;
  original: Buffer;
  plain: WebAssembly.Module;
  tracked: WebAssembly.Module;
}

const FEATURES = () =>
  binaryen.Features.MVP | binaryen.Features.MutableGlobals | binaryen.Features.BulkMemory |
  binaryen.Features.BulkMemoryOpt | binaryen.Features.SignExt | binaryen.Features.NontrappingFPToInt |
  binaryen.Features.SIMD128 | binaryen.Features.Multivalue;

export const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

function read(bytes: Uint8Array): binaryen.Module {
  let mod: binaryen.Module;
  try {
    mod = binaryen.readBinary(bytes);
  } catch (err) {
    throw new Error(`not a valid WebAssembly module (${(err as Error).message})`);
  }
  mod.setFeatures(FEATURES());
  return mod;
}

function optimise(mod: binaryen.Module): Uint8Array {
  binaryen.setOptimizeLevel(2);
  binaryen.setShrinkLevel(0);
  mod.optimize();
  if (!mod.validate()) throw new Error('internal error: instrumented module does not validate');
  return mod.emitBinary();
}

/** Runs the instrumentation pipeline (slow: seconds per MiB of code). */
export function instrument(original: Uint8Array): { meta: PrepareMeta; plain: Uint8Array; tracked: Uint8Array } {
  const t0 = performance.now();
  const hash = sha256(original);
  const probe = new WebAssembly.Module(original as BufferSource);
  const imports = WebAssembly.Module.imports(probe);
  for (const imp of imports) {
    if (imp.kind === 'function' && imp.module !== 'wasi_snapshot_preview1')
      throw new Error(`unsupported import ${imp.module}.${imp.name}: roam runs WASI preview1 programs (imports from wasi_snapshot_preview1 only)`);
    if (imp.kind !== 'function') throw new Error(`unsupported import ${imp.module}.${imp.name} (${imp.kind}): the program must define its own memory and tables`);
  }
  if (!WebAssembly.Module.exports(probe).some((e) => e.name === '_start' && e.kind === 'function'))
    throw new Error('the module has no _start export: roam runs WASI commands (a main program), not libraries');

  const mod = read(original);
  checkSupported(mod);
  const mem = mod.getMemoryInfo();
  if (mem.shared || mem.is64) throw new Error('unsupported: shared or 64-bit memory');
  const declaredMax = mem.max ?? 65536;
  // Region: a byte per 4 KiB page of the whole 4 GiB (1 MiB), then the Asyncify buffer.
  const realMax = Math.min(65536, declaredMax);
  const bitmapBytes = realMax * 16;
  const regionPages = Math.ceil((bitmapBytes + ASYNCIFY_BYTES) / 65536);
  if (declaredMax - regionPages < mem.initial)
    throw new Error(`the module's maximum memory (${declaredMax} pages) leaves no room for roam's ${regionPages}-page region`);

  const unwindable = unwindableFunctions(mod, new Set(BLOCKING_IMPORTS));
  insertPolls(mod, unwindable);
  hideRegion(mod, mem.initial, regionPages);
  const globals = exportMutableGlobals(mod);
  // The memory is supplied by the kernel so that both variants share it.
  mod.addMemoryImport('0', 'roam', 'memory');
  binaryen.setOptimizeLevel(1);
  binaryen.setPassArgument('asyncify-imports', BLOCKING_IMPORTS.join(','));
  mod.runPasses(['asyncify']);
  binaryen.setPassArgument('asyncify-imports', null);
  // Keep names in the intermediate binary: the barrier pass finds roam's globals by name.
  binaryen.setDebugInfo(true);
  const base = mod.emitBinary();
  binaryen.setDebugInfo(false);
  const plain = optimise(mod);
  mod.dispose();

  const tmod = read(base);
  insertBarrier(tmod, new Set([ROAM.grow]));
  const tracked = optimise(tmod);
  tmod.dispose();

  let functions = 0;
  for (const e of WebAssembly.Module.exports(probe)) if (e.kind === 'function') functions++;
  const meta: PrepareMeta = {
    version: PREPARE_VERSION, hash, regionPages, bitmapBytes,
    asyncifyOffset: bitmapBytes, asyncifyBytes: regionPages * 65536 - bitmapBytes,
    initialPages: mem.initial, maxPages: declaredMax - regionPages, globals,
    unwindable: unwindable.size, functions,
    bytes: { original: original.length, plain: plain.length, tracked: tracked.length },
    prepareMs: Math.round(performance.now() - t0),
  };
  return { meta, plain, tracked };
}

const cacheDir = () => path.join(roamHome(), 'cache');

/** Prepare `original`, from the on-disk cache when it was prepared before. */
export async function prepare(original: Buffer, opts: { onProgress?: (msg: string) => void } = {}): Promise<PreparedModule> {
  const hash = sha256(original);
  const stem = path.join(cacheDir(), `${hash}.v${PREPARE_VERSION}`);
  let meta: PrepareMeta, plainBytes: Uint8Array, trackedBytes: Uint8Array;
  try {
    meta = JSON.parse(fs.readFileSync(`${stem}.json`, 'utf8'));
    plainBytes = fs.readFileSync(`${stem}.plain.wasm`);
    trackedBytes = fs.readFileSync(`${stem}.tracked.wasm`);
  } catch {
    opts.onProgress?.(`preparing module ${hash.slice(0, 12)} (${original.length} bytes; cached afterwards)`);
    ({ meta, plain: plainBytes, tracked: trackedBytes } = instrument(original));
    fs.mkdirSync(cacheDir(), { recursive: true });
    // Write the metadata last and atomically: a crash mid-write leaves no half entry.
    fs.writeFileSync(`${stem}.plain.wasm`, plainBytes);
    fs.writeFileSync(`${stem}.tracked.wasm`, trackedBytes);
    fs.writeFileSync(`${stem}.json.tmp`, JSON.stringify(meta, null, 1));
    fs.renameSync(`${stem}.json.tmp`, `${stem}.json`);
  }
  const [plain, tracked] = await Promise.all([WebAssembly.compile(plainBytes as BufferSource), WebAssembly.compile(trackedBytes as BufferSource)]);
  return { meta, original, plain, tracked };
}
