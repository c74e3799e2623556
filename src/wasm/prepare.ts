// Preparing a module: turn any WASI preview1 module into the two checkpointable
// variants the guest kernel runs, cached on disk by content hash.
//
//  plain   = Asyncify(safepoint polls + hidden region + exported globals)
//                                            — runs while no checkpoint is under way
//  tracked = write barrier(plain)            — runs while the page cleaner works
//
// (pipeline.ts runs the passes; native.ts is the wasm-opt that runs Asyncify fastest.)
// Both come from the same Asyncify output, so a program unwound in one can be
// rewound in the other: the kernel switches variants at a safepoint when a
// checkpoint starts and ends, and the barrier costs nothing the rest of the time.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { roamHome } from '../util/home.js';

/** Bump when the instrumentation changes, so stale cache entries are not used. */
export const PREPARE_VERSION = 11;

/** The imports at which a program may block; Asyncify makes only these unwindable. */
export const BLOCKING_IMPORTS = [
  'fd_read',
  'fd_write',
  'fd_pread',
  'fd_pwrite',
  'path_open',
  'poll_oneoff',
  'sock_accept',
  'sock_recv',
  'sock_send',
  'sched_yield',
]
  .map((n) => `wasi_snapshot_preview1.${n}`)
  .concat(['roam.poll']);

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
  bytes: { original: number; plain: number; tracked: number };
  prepareMs: number;
  /** What ran Asyncify (`wasm-opt 108`, `binaryen.js 132`) and how long it took. */
  asyncify?: { by: string; ms: number };
}

export interface PreparedModule {
  meta: PrepareMeta;
  original: Buffer;
  plain: WebAssembly.Module;
  /** Compiled on first use, or in the background soon after start-up. */
  readonly tracked: WebAssembly.Module;
  /** Settles once the background compile of the tracked variant has finished (or failed). */
  readonly trackedCompiled?: Promise<void>;
}

export const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** The WASI preview1 functions the guest kernel implements (src/guest/wasi.ts). */
export const WASI_FUNCTIONS = new Set([
  'args_get',
  'args_sizes_get',
  'environ_get',
  'environ_sizes_get',
  'clock_res_get',
  'clock_time_get',
  'fd_advise',
  'fd_allocate',
  'fd_close',
  'fd_datasync',
  'fd_fdstat_get',
  'fd_fdstat_set_flags',
  'fd_fdstat_set_rights',
  'fd_filestat_get',
  'fd_filestat_set_size',
  'fd_filestat_set_times',
  'fd_pread',
  'fd_prestat_get',
  'fd_prestat_dir_name',
  'fd_pwrite',
  'fd_read',
  'fd_readdir',
  'fd_renumber',
  'fd_seek',
  'fd_sync',
  'fd_tell',
  'fd_write',
  'path_create_directory',
  'path_filestat_get',
  'path_filestat_set_times',
  'path_link',
  'path_open',
  'path_readlink',
  'path_remove_directory',
  'path_rename',
  'path_symlink',
  'path_unlink_file',
  'poll_oneoff',
  'proc_exit',
  'proc_raise',
  'sched_yield',
  'random_get',
  'sock_accept',
  'sock_recv',
  'sock_send',
  'sock_shutdown',
]);

/** Refuse what roam cannot run, with a reason, before spending seconds instrumenting it. */
function check(bytes: Uint8Array): void {
  if (
    bytes.length < 8 ||
    bytes[0] !== 0 ||
    bytes[1] !== 0x61 ||
    bytes[2] !== 0x73 ||
    bytes[3] !== 0x6d
  )
    throw new Error(
      'not a WebAssembly module (no \\0asm magic); roam runs WASI programs compiled to .wasm',
    );
  let probe: WebAssembly.Module;
  try {
    probe = new WebAssembly.Module(bytes as BufferSource);
  } catch (err) {
    throw new Error(`not a valid WebAssembly module: ${(err as Error).message}`);
  }
  for (const imp of WebAssembly.Module.imports(probe)) {
    if (imp.kind !== 'function')
      throw new Error(
        `unsupported import ${imp.module}.${imp.name} (${imp.kind}): the program must define its own memory and tables`,
      );
    if (imp.module !== 'wasi_snapshot_preview1')
      throw new Error(
        `unsupported import ${imp.module}.${imp.name}: roam runs WASI preview1 programs (imports from wasi_snapshot_preview1 only)`,
      );
    if (!WASI_FUNCTIONS.has(imp.name))
      throw new Error(
        `unsupported import wasi_snapshot_preview1.${imp.name}: roam's guest kernel does not implement it`,
      );
  }
  if (!WebAssembly.Module.exports(probe).some((e) => e.name === '_start' && e.kind === 'function'))
    throw new Error(
      'the module has no _start export: roam runs WASI commands (a main program), not libraries',
    );
}

const cacheDir = () => path.join(roamHome(), 'cache');
/** The cache entry of a module: STEM.json (written last), STEM.plain.wasm, STEM.tracked.wasm. */
const cacheStem = (hash: string) => path.join(cacheDir(), `${hash}.v${PREPARE_VERSION}`);

function writeCache(
  stem: string,
  meta: Uint8Array | string,
  plain: Uint8Array,
  tracked: Uint8Array,
): void {
  fs.mkdirSync(cacheDir(), { recursive: true });
  // The metadata last and atomically: a crash mid-write leaves no half entry.
  fs.writeFileSync(`${stem}.plain.wasm`, plain);
  fs.writeFileSync(`${stem}.tracked.wasm`, tracked);
  fs.writeFileSync(`${stem}.json.tmp`, meta);
  fs.renameSync(`${stem}.json.tmp`, `${stem}.json`);
}

const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;

/** With the message that a preparation starts: that it does, and how long it should take. */
export type PrepareInfo =
  | {
      preparing: true;
      /** From the modules prepared here before (ms per byte of the original); none the first time. */
      etaMs?: number;
    }
  | { prepared: true };
export type OnPrepareProgress = (msg: string, info?: PrepareInfo) => void;

// Preparation time grows with the module (Asyncify rewrites its functions); the
// rate of the last preparations here gives a rough ETA for the next one.
const rateFile = () => path.join(cacheDir(), 'prepare-rate.json');
function msPerByte(): number | undefined {
  try {
    const v = (JSON.parse(fs.readFileSync(rateFile(), 'utf8')) as { msPerByte?: unknown })
      .msPerByte;
    return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined;
  } catch {
    return undefined;
  }
}
function recordRate(bytes: number, ms: number): void {
  const prev = msPerByte(),
    now = ms / Math.max(1, bytes);
  fs.writeFileSync(rateFile(), JSON.stringify({ msPerByte: prev ? (prev + now) / 2 : now }));
}

/** Prepare `original`, from the on-disk cache when it was prepared before. */
export async function prepare(
  original: Buffer,
  opts: { onProgress?: OnPrepareProgress; name?: string } = {},
): Promise<PreparedModule> {
  const hash = sha256(original);
  const stem = cacheStem(hash);
  let meta: PrepareMeta, plainBytes: Uint8Array, trackedBytes: Uint8Array;
  try {
    meta = JSON.parse(fs.readFileSync(`${stem}.json`, 'utf8')) as PrepareMeta;
    plainBytes = fs.readFileSync(`${stem}.plain.wasm`);
    trackedBytes = fs.readFileSync(`${stem}.tracked.wasm`);
  } catch {
    check(original);
    const name = opts.name ?? `module ${hash.slice(0, 12)}`;
    const rate = msPerByte();
    opts.onProgress?.(`preparing ${name} (${mb(original.length)}; cached afterwards) ...`, {
      preparing: true,
      etaMs: rate === undefined ? undefined : rate * original.length,
    });
    // Binaryen is large: load it only when a module is not in the cache.
    const { instrument } = await import('./pipeline.js');
    ({
      meta,
      plain: plainBytes,
      tracked: trackedBytes,
    } = await instrument(original, {
      onStage: (m) => opts.onProgress?.(`  ${m}`),
    }));
    writeCache(stem, JSON.stringify(meta, null, 1), plainBytes, trackedBytes);
    recordRate(original.length, meta.prepareMs);
    opts.onProgress?.(
      `prepared ${name} in ${(meta.prepareMs / 1000).toFixed(1)} s (Asyncify ${((meta.asyncify?.ms ?? 0) / 1000).toFixed(1)} s)`,
      { prepared: true },
    );
  }
  const plain = await WebAssembly.compile(plainBytes as BufferSource);
  const tracked = lazyTracked(trackedBytes);
  return {
    meta,
    original,
    plain,
    get tracked() {
      return tracked.get();
    },
    trackedCompiled: tracked.compiled,
  };
}

/** How long after start-up the tracked variant is compiled in the background. */
const TRACKED_COMPILE_DELAY_MS = 1000;

/**
 * The tracked variant is needed only once a checkpoint starts: it is compiled in
 * the background a moment after start-up (V8's compile threads would otherwise
 * compete with the program's first second on a small machine), or at once, on
 * this thread, if a checkpoint asks for it before that.
 */
function lazyTracked(bytes: Uint8Array): {
  get: () => WebAssembly.Module;
  compiled: Promise<void>;
} {
  let mod: WebAssembly.Module | undefined;
  const compiled = new Promise<void>((done) =>
    setTimeout(() => {
      if (mod) return done();
      WebAssembly.compile(bytes as BufferSource).then(
        (m) => {
          mod ??= m;
          done();
        },
        () => done(), // compiled (and its error reported) when needed
      );
    }, TRACKED_COMPILE_DELAY_MS).unref(),
  );
  return { get: () => (mod ??= new WebAssembly.Module(bytes as BufferSource)), compiled };
}

// A prepared module travels with a migration (Msg.PREPARED), so that a cstrap
// with an empty cache — every VM the node daemon starts — runs the program at
// once instead of spending seconds in Binaryen. Layout: u32 meta length, meta
// JSON, u32 plain length, plain, tracked. It comes over the channel that also
// carries the VM's memory, under the same key, so it is trusted as much.

/** This process' cached preparation of the module `hash`, packed; null if not cached. */
export function packPrepared(hash: string): Buffer | null {
  const stem = cacheStem(hash);
  try {
    const meta = fs.readFileSync(`${stem}.json`),
      plain = fs.readFileSync(`${stem}.plain.wasm`),
      tracked = fs.readFileSync(`${stem}.tracked.wasm`);
    const len = (n: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(n);
      return b;
    };
    return Buffer.concat([len(meta.length), meta, len(plain.length), plain, tracked]);
  } catch {
    return null;
  }
}

/** Put a packed preparation into this process' cache, unless it is there already or from another roam. */
export function adoptPrepared(packed: Buffer): string | null {
  if (packed.length < 8) return null;
  const metaLen = packed.readUInt32LE(0);
  if (8 + metaLen > packed.length) return null;
  const plainLen = packed.readUInt32LE(4 + metaLen);
  if (8 + metaLen + plainLen > packed.length) return null;
  let meta: PrepareMeta;
  try {
    meta = JSON.parse(packed.toString('utf8', 4, 4 + metaLen)) as PrepareMeta;
  } catch {
    return null;
  }
  if (
    meta?.version !== PREPARE_VERSION ||
    typeof meta.hash !== 'string' ||
    !/^[0-9a-f]{64}$/.test(meta.hash)
  )
    return null;
  const stem = cacheStem(meta.hash);
  if (fs.existsSync(`${stem}.json`)) return meta.hash;
  writeCache(
    stem,
    packed.subarray(4, 4 + metaLen),
    packed.subarray(8 + metaLen, 8 + metaLen + plainLen),
    packed.subarray(8 + metaLen + plainLen),
  );
  return meta.hash;
}
