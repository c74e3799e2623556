// Resuming a VM from a checkpoint (either format), in this process.
import fs from 'node:fs';
import {
  CheckpointError,
  IMAGE_MAGIC,
  ImageReader,
  readCheckpoint,
  type Checkpoint,
  type ReadOptions,
} from '../format/index.js';
import { PAGE_SIZE } from '../memory/frames.js';
import { Memories } from './memories.js';
import { Kernel, type KernelOptions, type KernelState } from '../guest/kernel.js';
import { prepare, type PreparedModule } from '../wasm/prepare.js';
import { missingFeatures } from '../memory/features.js';

/** @param compiled modules already being prepared (a migration compiles them while pages arrive) */
export async function restoreVm(
  cp: Checkpoint,
  opts: Omit<KernelOptions, 'dirs' | 'tcplisten'>,
  compiled: (hash: string) => Promise<PreparedModule> | undefined = () => undefined,
  memories: (slot: number) => WebAssembly.Memory | undefined = () => undefined,
): Promise<Kernel> {
  const missing = missingFeatures(cp.header.features);
  if (missing.length)
    throw new CheckpointError(
      'unsupported',
      `this host lacks WASM feature(s) the VM needs: ${missing.join(', ')}`,
    );
  let state: KernelState;
  try {
    state = JSON.parse(cp.kernel.toString('utf8')) as KernelState;
  } catch {
    throw new CheckpointError('corrupted', 'the kernel state in the checkpoint is not valid JSON');
  }
  const empty = new Map<number, Buffer>();
  return Kernel.restore(
    state,
    (slot) => cp.spaces.get(slot) ?? empty,
    async (hash) => {
      const bytes = cp.modules.get(hash);
      if (!bytes)
        throw new CheckpointError(
          'corrupted',
          `the checkpoint lacks module ${hash.slice(0, 12)} that process state refers to`,
        );
      const mod = await (compiled(hash) ?? prepare(bytes));
      // Asyncify's stack layout depends on the tool that ran it (wasm-opt or binaryen.js,
      // and their versions): a stack saved by one cannot be rewound by another's code.
      const want = state.processes.find((p) => p.module === hash && p.prepared)?.prepared;
      const have = mod.meta.asyncify?.by;
      if (want && have !== want)
        throw new CheckpointError(
          'unsupported',
          `module ${hash.slice(0, 12)} was prepared here by ${have ?? 'an older roam'}, but the VM's stacks were saved by code from ${want}; prepare it with the same tool (ROAM_WASM_OPT=off selects binaryen.js; Debian's binaryen package provides wasm-opt) and an empty cache`,
        );
      return mod;
    },
    opts,
    memories,
  );
}

/** What restoreFile did, for benchmarks and reports. */
export interface FileRestore {
  kernel: Kernel;
  checkpoint: Checkpoint;
  /** ms from the call until every page was read and verified (the modules prepared meanwhile). */
  readMs: number;
}

/**
 * Resumes a VM from a checkpoint file. An image's program pages are read straight
 * into the memories the programs will run in (with the modules compiled first, so
 * the memories' limits are known) and checked there; nothing runs before every
 * page, the metadata and VERIFY have been checked. A stream is read, then copied.
 */
export async function restoreFile(
  path: string,
  read: ReadOptions,
  opts: Omit<KernelOptions, 'dirs' | 'tcplisten'>,
): Promise<FileRestore> {
  const t0 = performance.now();
  const img = isImage(path) ? ImageReader.open(path, read) : undefined;
  if (!img) {
    const cp = await readCheckpoint(path, read);
    const readMs = performance.now() - t0;
    return { kernel: await restoreVm(cp, opts), checkpoint: cp, readMs };
  }
  try {
    const compiled = new Map<string, Promise<PreparedModule>>();
    for (const [hash, bytes] of img.modules) {
      const p = prepare(bytes);
      p.catch(() => undefined); // reported by the restore, which needs it
      compiled.set(hash, p);
    }
    const memories = new Memories();
    const mods = await Promise.all(compiled.values()).catch(() => []);
    if (mods.length > 0)
      memories.start(
        mods.map((m) => ({
          maximum: m.meta.maxPages + m.meta.regionPages,
          region: m.meta.regionPages,
        })),
        [],
      );
    memories.reserve(img.spaceSizes);
    const spaces = new Map<number, Map<number, Buffer>>();
    for (const [slot, count] of img.spaceSizes) {
      const mem = memories.view(slot);
      if (mem) {
        await img.load(slot, mem, true);
        continue;
      }
      // The kernel's page pool, or programs whose memories cannot be built ahead.
      const buf = Buffer.alloc(count * PAGE_SIZE);
      const live = await img.load(slot, buf);
      if (live.length === 0) continue;
      const m = new Map<number, Buffer>();
      for (const p of live) m.set(p, buf.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE));
      spaces.set(slot, m);
    }
    const cp = img.result(spaces);
    const readMs = performance.now() - t0;
    const kernel = await restoreVm(
      cp,
      opts,
      (hash) => compiled.get(hash),
      (slot) => memories.take(slot),
    );
    return { kernel, checkpoint: cp, readMs };
  } finally {
    img.close();
  }
}

/** Whether the file starts with the image magic (anything else is left to readCheckpoint). */
function isImage(path: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch {
    return false; // readCheckpoint says why
  }
  try {
    const magic = Buffer.alloc(IMAGE_MAGIC.length);
    return fs.readSync(fd, magic, 0, magic.length, 0) === magic.length && magic.equals(IMAGE_MAGIC);
  } finally {
    fs.closeSync(fd);
  }
}
