// Resuming a VM from a checkpoint file with its pages written straight into the
// memories its programs will run in: an image's read there in large reads (and
// checked where they land), a stream's put there as its records are decoded. A
// 256 MiB VM restored through buffers spent most of its time copying them in.
import fs from 'node:fs';
import { createReadStream } from 'node:fs';
import {
  CheckpointAssembler,
  IMAGE_MAGIC,
  ImageReader,
  RecordDecoder,
  RecordType,
  type Checkpoint,
  type ReadOptions,
} from '../format/index.js';
import type { Kernel, KernelOptions } from '../guest/kernel.js';
import { prepare, type PreparedModule } from '../wasm/prepare.js';
import { Memories } from './memories.js';
import { restoreVm } from './restore.js';

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
  if (!img) return restoreStream(path, read, opts, t0);
  try {
    const compiled = new Map<string, Promise<PreparedModule>>();
    for (const [hash, bytes] of img.modules) {
      const p = prepare(bytes);
      p.catch(() => undefined); // reported by the restore, which needs it
      compiled.set(hash, p);
    }
    const memories = new Memories();
    await startMemories(memories, compiled, []);
    memories.reserve(img.spaceSizes);
    const spaces = new Map<number, Map<number, Buffer>>();
    for (const [slot, count] of img.spaceSizes) {
      const mem = memories.view(slot);
      if (mem) {
        await img.load(slot, mem, true);
        continue;
      }
      // The kernel's page pool, or programs whose memories cannot be built ahead.
      const m = await img.loadPages(slot, count);
      if (m) spaces.set(slot, m);
    }
    return await build(img.result(spaces), t0, opts, compiled, memories);
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

/** Memories sized for the modules once they are compiled (none if one fails: the restore reports it). */
async function startMemories(
  memories: Memories,
  compiled: Map<string, Promise<PreparedModule>>,
  replay: Iterable<[number, number, Uint8Array]>,
): Promise<void> {
  const mods = await Promise.all(compiled.values()).catch(() => []);
  if (mods.length === 0) return;
  memories.start(
    mods.map((m) => ({
      maximum: m.meta.maxPages + m.meta.regionPages,
      region: m.meta.regionPages,
    })),
    replay,
  );
}

function* everyPage(spaces: Map<number, Map<number, Buffer>>): Generator<[number, number, Buffer]> {
  for (const [slot, pages] of spaces) for (const [page, data] of pages) yield [slot, page, data];
}

/**
 * A stream file: modules compiled as their records arrive; from the first PAGES on,
 * pages go into the programs' memories (VERIFY's page sum kept as they go), so the
 * records they came in are garbage at once. Nothing runs before END is verified.
 */
async function restoreStream(
  path: string,
  read: ReadOptions,
  opts: Omit<KernelOptions, 'dirs' | 'tcplisten'>,
  t0: number,
): Promise<FileRestore> {
  const dec = new RecordDecoder(read);
  const asm = new CheckpointAssembler(true, true);
  const memories = new Memories();
  const compiled = new Map<string, Promise<PreparedModule>>();
  let started = false;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    for (const rec of dec.push(chunk as Buffer)) {
      asm.add(rec);
      if (rec.type === RecordType.MODULE) {
        for (const [hash, bytes] of asm.modules) {
          if (compiled.has(hash)) continue;
          const p = prepare(bytes);
          p.catch(() => undefined); // reported by the restore, which needs it
          compiled.set(hash, p);
        }
      } else if (rec.type === RecordType.SPACES) memories.reserve(asm.spaceSizes);
      else if (rec.type === RecordType.PAGES && !started) {
        // Modules come before pages: once compiled, their memories' limits are known.
        started = true;
        await startMemories(memories, compiled, everyPage(asm.spaces));
        for (const slot of asm.spaces.keys()) if (memories.holds(slot)) asm.spaces.delete(slot);
        asm.onPage = (slot, page, data) => memories.put(slot, page, data);
      }
    }
  }
  dec.finish();
  return build(asm.result('stream', dec.bytes, dec.signed), t0, opts, compiled, memories);
}

/** The VM from what was read: its modules compiled and memories filled already. */
async function build(
  cp: Checkpoint,
  t0: number,
  opts: Parameters<typeof restoreVm>[1],
  compiled: Map<string, Promise<PreparedModule>>,
  memories: Memories,
): Promise<{ kernel: Kernel; checkpoint: Checkpoint; readMs: number }> {
  const readMs = performance.now() - t0;
  const kernel = await restoreVm(
    cp,
    opts,
    (hash) => compiled.get(hash),
    (slot) => memories.take(slot),
  );
  return { kernel, checkpoint: cp, readMs };
}
