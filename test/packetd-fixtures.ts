// Shared fixtures for the packetd and broker tests: a chain and a token minted
// the way the broker does, and a daemon on a real UDP socket on 127.0.0.1.
import { randomBytes } from 'node:crypto';
import {
  iterate,
  mintBootToken,
  newSeed,
  vmKey,
  type BootTokenFields,
} from '../src/tokens/index.js';
import {
  Packetd,
  type Launched,
  type LaunchRequest,
  type PacketdOptions,
} from '../src/host/packetd.js';
import { request } from '../src/host/client.js';
import type { Message } from '../src/host/protocol.js';
import { reasonName } from '../src/tokens/issue.js';

export const SECRET = Buffer.alloc(32, 7);

export interface Minted {
  raw: Buffer;
  jobId: Buffer;
  seed: Buffer;
  n: number;
  element(i: number): Buffer;
}

// A job's chain of length n with the first `units` units in the token.
export function mint(o: Partial<BootTokenFields> & { secret?: Buffer; n?: number } = {}): Minted {
  const seed = newSeed(),
    n = o.n ?? 100,
    units = o.units ?? 10,
    jobId = o.jobId ?? randomBytes(16);
  const raw = mintBootToken(
    {
      nodeId: 'node-a',
      jobId,
      anchor: iterate(seed, n),
      payment: iterate(seed, n - units),
      units,
      memoryMiB: 64,
      cpuShare: 100,
      ports: 1,
      lifetimeS: 60,
      loaderSha256: Buffer.alloc(32, 1),
      expiry: Math.floor(Date.now() / 1000) + 600,
      ...o,
    },
    o.secret ?? SECRET,
  );
  return { raw, jobId, seed, n, element: (i) => iterate(seed, i) };
}

// A VM as the daemon sees one, for unit tests of the daemon alone (the process
// launcher is tested end to end in node-lifecycle.test.ts). Its usage is what
// the test puts in `cpu` and `rss`; `suspend` says whether it left a checkpoint.
export interface FakeVm extends Launched {
  exit(): void;
  notices: string[];
  suspend: boolean;
  pid: number;
}
export const cpu = new Map<number, number>(),
  rss = new Map<number, number>();

export function fakeVm(
  vmId: string,
  addr = '',
  o: { stop?: () => void; pid?: number } = {},
): FakeVm {
  let exit!: () => void;
  const exited = new Promise<void>((r) => (exit = r));
  const vm: FakeVm = {
    vmId,
    addr,
    exited,
    exit,
    notices: [],
    suspend: false,
    pid: o.pid ?? 1,
    usage: () => ({ cpuS: cpu.get(vm.pid) ?? 0, rssMiB: rss.get(vm.pid) ?? 0 }),
    notify: (l) => void vm.notices.push(l),
    suspended: () => vm.suspend,
    purge: () => {
      o.stop?.();
      exit();
    },
  };
  return vm;
}

/** Make the meter debit `units` from the job whose fake VM has `pid` (price 1, memory free). */
export function charge(d: Packetd, pid: number, units: number): void {
  cpu.set(pid, (cpu.get(pid) ?? 0) + units);
  d.tick(1);
}

let pids = 1000;

export async function daemon(o: Partial<PacketdOptions> & { noLauncher?: boolean } = {}) {
  const launches: LaunchRequest[] = [],
    stopped: string[] = [],
    vms: FakeVm[] = [];
  const first = pids + 1;
  const d = new Packetd({
    nodeId: 'node-a',
    secret: SECRET,
    capacity: 1024,
    memPrice: 0,
    // A launcher that records what the daemon asked for; a revival gets the VM id back.
    launcher: o.noLauncher
      ? undefined
      : async (r) => {
          launches.push(r);
          const vmId = r.revive ?? `vm-${launches.length}`;
          const vm = fakeVm(vmId, `127.0.0.1:${9000 + launches.length}`, {
            stop: () => stopped.push(vmId),
            pid: ++pids,
          });
          vms.push(vm);
          return vm;
        },
    ...o,
  });
  const a = await d.listen(0, '127.0.0.1');
  const addr = `127.0.0.1:${a.port}`;
  // As the job's customer asks: its requests signed with the job's key (TOKEN.key).
  const secret = o.secret ?? SECRET;
  const ask = (req: Parameters<typeof request>[1]): Promise<Message> =>
    request(addr, req, {
      timeoutMs: 300,
      retries: 5,
      key: 'jobId' in req ? vmKey(secret, req.jobId) : undefined,
    });
  /** pid of the n-th VM this daemon launched (0-based). */
  const pid = (n = 0) => first + n;
  return { d, addr, ask, launches, stopped, vms, pid };
}

export const refusal = (m: Message): string =>
  m.type === 'REFUSED' ? `refused:${reasonName(m.reason)}` : m.type;
