// Deterministic synthetic checkpoints, for tests and demos of the formats (and of
// `roam inspect`) without running a VM: several pre-copy rounds in which pages are
// rewritten, zeroed and un-zeroed, like a page cleaner would send them.
import { PAGE_SIZE } from '../memory/frames.js';
import {
  FORMAT_VERSION,
  computeVerify,
  pageDigest,
  PRESENT,
  type PageEntry,
  type SpaceSizes,
  type StreamHeader,
} from './stream.js';
import type { CheckpointTarget } from './target.js';

export interface SampleCheckpoint {
  header: StreamHeader;
  modules: Buffer[];
  /** Page batches in the order they are sent. */
  rounds: PageEntry[][];
  /** Expected final non-zero content: slot -> page -> bytes. */
  final: Map<number, Map<number, Buffer>>;
  spaces: SpaceSizes;
  kernel: Buffer;
  verify: Buffer;
  /** VERIFY counting pages by presence (what an image or a migration stream carries). */
  presenceVerify: Buffer;
}

/** mulberry32: tiny, seedable, good enough for test data. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomPageOf(rand: () => number): Buffer {
  const b = Buffer.alloc(PAGE_SIZE);
  // Sparse-ish content: a few random runs, so some bytes stay zero.
  const runs = 1 + Math.floor(rand() * 4);
  for (let r = 0; r < runs; r++) {
    const at = Math.floor(rand() * PAGE_SIZE);
    const len = Math.min(PAGE_SIZE - at, 1 + Math.floor(rand() * 600));
    for (let i = 0; i < len; i++) b[at + i] = Math.floor(rand() * 256);
  }
  b[Math.floor(rand() * PAGE_SIZE)] = 1 + Math.floor(rand() * 255); // never all zero
  return b;
}

/** Pre-copy rounds over `spaces`, and each page's final content (null: zero). */
function sampleRounds(
  rand: () => number,
  spaces: SpaceSizes,
  nRounds: number,
): { rounds: PageEntry[][]; current: Map<string, Buffer | null> } {
  const current = new Map<string, Buffer | null>();
  const rounds: PageEntry[][] = [];
  for (let round = 0; round < nRounds; round++) {
    const batch: PageEntry[] = [];
    for (const [s, count] of Object.entries(spaces)) {
      const slot = Number(s);
      for (let page = 0; page < count; page++) {
        // Round 0 sends every page; later rounds a dirty subset.
        if (round > 0 && rand() < 0.5) continue;
        const x = rand();
        let data: Uint8Array | null;
        if (x < 0.2) data = null;
        else if (x < 0.3)
          data = new Uint8Array(PAGE_SIZE); // explicit zeros must count as zero
        else data = randomPageOf(rand);
        batch.push({ slot, page, data });
        current.set(
          `${slot}:${page}`,
          data && data.some((v) => v !== 0) ? Buffer.from(data) : null,
        );
      }
    }
    // Shuffle so writers cannot rely on ordered batches.
    for (let i = batch.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [batch[i], batch[j]] = [batch[j], batch[i]];
    }
    rounds.push(batch);
  }
  return { rounds, current };
}

export function sampleCheckpoint(
  opts: { seed?: number; slots?: Record<number, number>; rounds?: number } = {},
): SampleCheckpoint {
  const rand = rng(opts.seed ?? 1);
  const spaces: SpaceSizes = opts.slots ?? { 0: 6, 1: 9, 3: 5 };
  const { rounds, current } = sampleRounds(rand, spaces, opts.rounds ?? 3);
  const final = new Map<number, Map<number, Buffer>>();
  for (const [k, v] of current) {
    if (!v) continue;
    const [slot, page] = k.split(':').map(Number) as [number, number];
    if (!final.has(slot)) final.set(slot, new Map());
    final.get(slot)!.set(page, v);
  }
  const processes = Object.keys(spaces)
    .map(Number)
    .filter((s) => s > 0)
    .map((slot) => ({
      pid: slot,
      slot,
      argv: [`prog${slot}`, '--flag'],
      status: 'running',
      pageCount: spaces[slot],
    }));
  const kernel = Buffer.from(
    JSON.stringify({ version: 'test-1', processes, clock: rand() }),
    'utf8',
  );
  const modules = [
    Buffer.concat([
      Buffer.from('\0asm\x01\0\0\0', 'latin1'),
      Buffer.from(randomPageOf(rand).subarray(0, 300)),
    ]),
  ];
  const digests: Array<[number, number, Buffer]> = [];
  for (const slot of [...final.keys()].sort((a, b) => a - b)) {
    const m = final.get(slot)!;
    for (const page of [...m.keys()].sort((a, b) => a - b))
      digests.push([slot, page, pageDigest(m.get(page)!)]);
  }
  const header: StreamHeader = {
    format: FORMAT_VERSION,
    pageSize: PAGE_SIZE,
    features: ['bulk-memory', 'mutable-globals'],
    vmId: `vm-sample-${opts.seed ?? 1}`,
    kind: 'checkpoint',
    createdAt: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)).toISOString(),
    kernelVersion: 'test-1',
  };
  return {
    header,
    modules,
    rounds,
    final,
    spaces,
    kernel,
    verify: computeVerify(kernel, digests),
    presenceVerify: computeVerify(
      kernel,
      digests.map(([slot, page]) => [slot, page, PRESENT] as const),
    ),
  };
}

/** Sends a sample through a target, as the page cleaner would. */
export async function writeSample(target: CheckpointTarget, s: SampleCheckpoint): Promise<void> {
  await target.begin(s.header, s.modules);
  for (const r of s.rounds) await target.pages(r);
  await target.finish(s.spaces, s.kernel, target.presenceVerify ? s.presenceVerify : s.verify);
}
