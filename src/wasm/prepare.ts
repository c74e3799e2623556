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
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { roamHome } from '../util/home.js';

/** Bump when the instrumentation changes, so stale cache entries are not used. */
export const PREPARE_VERSION = 4;

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

export const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

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
    // Binaryen is large: load it only when a module is not in the cache.
    const { instrument } = await import('./pipeline.js');
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
