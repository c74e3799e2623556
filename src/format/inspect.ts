// `roam inspect`: a plain description of a checkpoint and its text rendering.
import { PAGE_SIZE } from '../memory/frames.js';
import type { Checkpoint } from './assemble.js';
import type { CheckpointKind } from './stream.js';

export interface ProcessInfo {
  pid: number;
  slot: number;
  argv: string[];
  status: string;
}

export interface SlotDescription {
  slot: number;
  /** Pages in the frame space; null when neither the kernel state nor SPACES says. */
  pageCount: number | null;
  pageCountFrom: 'kernel' | 'spaces' | 'unknown';
  /** Non-zero pages stored in the checkpoint. */
  pagesPresent: number;
  bytes: number;
}

export interface CheckpointDescription {
  format: 'stream' | 'image';
  bytes: number;
  signed: boolean;
  vmId: string;
  kind: CheckpointKind;
  createdAt: string;
  kernelVersion: string;
  formatVersion: number;
  pageSize: number;
  features: string[];
  modules: Array<{ hash: string; size: number }>;
  slots: SlotDescription[];
  kernelBytes: number;
  verify: string;
  processes?: ProcessInfo[];
}

/**
 * Page counts from the kernel state, when it states them: a top-level
 * `spaces: {slot: pageCount}`, or `pageCount`/`pages` numbers on its processes.
 * The kernel knows the current sizes; SPACES is only what the writer recorded.
 */
function kernelFacts(kernel: Buffer): { counts: Map<number, number>; processes?: ProcessInfo[] } {
  const counts = new Map<number, number>();
  let state: unknown;
  try {
    state = JSON.parse(kernel.toString('utf8'));
  } catch {
    return { counts };
  }
  if (typeof state !== 'object' || state === null) return { counts };
  const s = state as { spaces?: unknown; processes?: unknown };
  if (typeof s.spaces === 'object' && s.spaces !== null) {
    for (const [k, v] of Object.entries(s.spaces))
      if (/^\d+$/.test(k) && Number.isInteger(v)) counts.set(Number(k), v as number);
  }
  let processes: ProcessInfo[] | undefined;
  if (Array.isArray(s.processes)) {
    processes = [];
    for (const p of s.processes as Array<Record<string, unknown>>) {
      if (typeof p !== 'object' || p === null) continue;
      const slot = Number(p.slot);
      processes.push({
        pid: Number(p.pid),
        slot,
        argv: Array.isArray(p.argv) ? p.argv.map(String) : [],
        status: typeof p.status === 'string' ? p.status : '',
      });
      const n = Number.isInteger(p.pageCount)
        ? p.pageCount
        : Number.isInteger(p.pages)
          ? p.pages
          : undefined;
      if (Number.isInteger(slot) && typeof n === 'number' && !counts.has(slot)) counts.set(slot, n);
    }
  }
  return { counts, processes };
}

export function describeCheckpoint(cp: Checkpoint): CheckpointDescription {
  const { counts, processes } = kernelFacts(cp.kernel);
  const slotIds = new Set<number>([...cp.spaces.keys(), ...cp.spaceSizes.keys(), ...counts.keys()]);
  const slots: SlotDescription[] = [...slotIds]
    .sort((a, b) => a - b)
    .map((slot) => {
      const present = cp.spaces.get(slot)?.size ?? 0;
      const k = counts.get(slot);
      const s = cp.spaceSizes.get(slot);
      return {
        slot,
        pageCount: k ?? s ?? null,
        pageCountFrom: k !== undefined ? 'kernel' : s !== undefined ? 'spaces' : 'unknown',
        pagesPresent: present,
        bytes: present * PAGE_SIZE,
      };
    });
  const h = cp.header;
  const d: CheckpointDescription = {
    format: cp.format,
    bytes: cp.bytes,
    signed: cp.signed,
    vmId: h.vmId,
    kind: h.kind,
    createdAt: h.createdAt,
    kernelVersion: h.kernelVersion,
    formatVersion: h.format,
    pageSize: h.pageSize,
    features: [...h.features],
    modules: [...cp.modules].map(([hash, b]) => ({ hash, size: b.length })),
    slots,
    kernelBytes: cp.kernel.length,
    verify: cp.verify.toString('hex'),
  };
  if (processes) d.processes = processes;
  return d;
}

function human(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** Columns padded to their widest cell; numeric columns right-aligned. */
function table(head: string[], rows: string[][], right: boolean[]): string[] {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]): string =>
    '  ' +
    r
      .map((c, i) => (right[i] ? c.padStart(w[i]) : c.padEnd(w[i])))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)];
}

export function formatDescription(d: CheckpointDescription): string {
  const kv: Array<[string, string]> = [
    [
      'format',
      `${d.format} v${d.formatVersion}, ${d.signed ? 'signed (HMAC-SHA256)' : 'unsigned (SHA-256)'}`,
    ],
    ['size', `${human(d.bytes)} (${d.bytes} bytes)`],
    ['vm', d.vmId],
    ['kind', d.kind],
    ['created', d.createdAt],
    ['kernel', `${d.kernelVersion}, state ${human(d.kernelBytes)}`],
    ['page size', String(d.pageSize)],
    ['features', d.features.length ? d.features.join(', ') : '(none)'],
    ['verify', d.verify],
  ];
  const kw = Math.max(...kv.map(([k]) => k.length));
  const out = kv.map(([k, v]) => `${k.padEnd(kw)}  ${v}`);
  out.push('', `modules (${d.modules.length})`);
  out.push(
    ...table(
      ['HASH', 'SIZE'],
      d.modules.map((m) => [m.hash, human(m.size)]),
      [false, true],
    ),
  );
  out.push('', `memory (${d.slots.length} slots)`);
  out.push(
    ...table(
      ['SLOT', 'WHAT', 'PAGES', 'PRESENT', 'BYTES'],
      d.slots.map((s) => [
        String(s.slot),
        s.slot === 0 ? 'kernel pool' : `process memory`,
        s.pageCount === null ? '?' : String(s.pageCount),
        String(s.pagesPresent),
        human(s.bytes),
      ]),
      [true, false, true, true, true],
    ),
  );
  if (d.processes) {
    out.push('', `processes (${d.processes.length})`);
    out.push(
      ...table(
        ['PID', 'SLOT', 'STATUS', 'ARGV'],
        d.processes.map((p) => [String(p.pid), String(p.slot), p.status, p.argv.join(' ')]),
        [true, true, false, false],
      ),
    );
  }
  return out.join('\n') + '\n';
}
