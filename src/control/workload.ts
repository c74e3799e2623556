// A workload description (thesis Figure 8.8, in JSON): the programs of one VM,
// how many instances of it, their memory, published ports and where they may
// run. The customer's text is checked field by field before anything is kept.
import { RoamError } from '../util/errors.js';

export interface Program {
  /** SHA-256 of a program uploaded to this control service. */
  sha256: string;
  args: string[];
}
export interface Workload {
  name: string;
  /** The first program is the VM's main one; the others run beside it, each with its own memory. */
  programs: Program[];
  instances: number;
  memoryMiB: number;
  /** Published TCP ports: instance i listens on HOST:(PORT + i) (port 0: any free port). */
  ports: string[];
  /** Nodes the instances may run on; they are spread evenly over them. */
  placement: { nodes: string[] };
  /** Given by the customer (must grow), or the next one. */
  version?: number;
}

export class ControlError extends RoamError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(code, message, { kind: status >= 500 ? 'peer' : 'refused' });
  }
}

const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const bad = (m: string): never => {
  throw new ControlError(400, 'bad-description', m);
};

export function checkWorkload(v: unknown): Workload {
  if (typeof v !== 'object' || v === null) return bad('a workload description is a JSON object');
  const w = v as Record<string, unknown>;
  if (typeof w.name !== 'string' || !NAME.test(w.name)) bad('"name": 1-64 of A-Z a-z 0-9 . _ -');
  if (!Array.isArray(w.programs) || w.programs.length < 1 || w.programs.length > 8)
    bad('"programs": a list of 1 to 8 programs');
  const programs = (w.programs as unknown[]).map((p, i): Program => {
    const x = p as Record<string, unknown>;
    if (typeof x?.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(x.sha256))
      bad(`programs[${i}].sha256: the SHA-256 of an uploaded program, 64 hex digits`);
    const args = x.args ?? [];
    if (!Array.isArray(args) || args.length > 64 || !args.every((a) => typeof a === 'string'))
      bad(`programs[${i}].args: a list of at most 64 strings`);
    return { sha256: x.sha256 as string, args: args as string[] };
  });
  const int = (k: string, min: number, max: number): number => {
    const n = w[k];
    if (!Number.isSafeInteger(n) || (n as number) < min || (n as number) > max)
      bad(`"${k}": an integer in ${min}..${max}`);
    return n as number;
  };
  const ports = w.ports ?? [];
  if (
    !Array.isArray(ports) ||
    ports.length > 4 ||
    !ports.every((p) => typeof p === 'string' && /^[0-9.]{7,15}:\d{1,5}$/.test(p))
  )
    bad('"ports": at most 4 of "IPv4:PORT"');
  const pl = w.placement as { nodes?: unknown } | undefined;
  const nodes = pl?.nodes;
  if (
    !Array.isArray(nodes) ||
    nodes.length < 1 ||
    nodes.length > 1024 ||
    !nodes.every((n) => typeof n === 'string' && NAME.test(n))
  )
    bad('"placement": {"nodes": [node ids the instances may run on]}');
  return {
    name: w.name as string,
    programs,
    instances: int('instances', 0, 4096),
    memoryMiB: int('memoryMiB', 1, 65536),
    ports: ports as string[],
    placement: { nodes: [...new Set(nodes as string[])] },
    version: w.version === undefined ? undefined : int('version', 1, 2 ** 31),
  };
}

/** Instance i's listeners. */
export const portsOf = (w: Workload, i: number): string[] =>
  w.ports.map((p) => {
    const at = p.lastIndexOf(':');
    const port = Number(p.slice(at + 1));
    return `${p.slice(0, at)}:${port === 0 ? 0 : port + i}`;
  });

/** What decides whether an instance must be replaced rather than kept (or moved). */
export const specOf = (w: Workload): string => JSON.stringify([w.programs, w.memoryMiB, w.ports]);

/**
 * Where each instance runs: those on a node still allowed stay (a move costs a
 * migration), as long as no node holds more than its even share; the rest go to
 * the allowed nodes holding fewest. Deterministic, so every control service
 * sharing a database agrees.
 */
export function place(
  instances: number,
  nodes: string[],
  current: Map<number, string>,
): Map<number, string> {
  const allowed = [...nodes].sort();
  const cap = Math.ceil(instances / Math.max(1, allowed.length));
  const load = new Map(allowed.map((n) => [n, 0]));
  const out = new Map<number, string>();
  for (let i = 0; i < instances; i++) {
    const n = current.get(i);
    if (n !== undefined && load.has(n) && load.get(n)! < cap) {
      out.set(i, n);
      load.set(n, load.get(n)! + 1);
    }
  }
  for (let i = 0; i < instances; i++) {
    if (out.has(i)) continue;
    const n = allowed.reduce((a, b) => (load.get(b)! < load.get(a)! ? b : a));
    out.set(i, n);
    load.set(n, load.get(n)! + 1);
  }
  return out;
}
