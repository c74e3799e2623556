// Shared fixtures for the packetd and broker tests: a chain and a token minted
// the way the broker does, and a daemon on a real UDP socket on 127.0.0.1.
import { randomBytes } from 'node:crypto';
import { iterate, mintBootToken, newSeed, type BootTokenFields } from '../src/tokens/index.js';
import { Packetd, type Launched, type LaunchRequest, type PacketdOptions } from '../src/host/packetd.js';
import { request } from '../src/host/client.js';
import type { Message } from '../src/host/protocol.js';
import { reasonName } from '../src/tokens/reasons.js';

export const SECRET = Buffer.alloc(32, 7);

export interface Minted { raw: Buffer; jobId: Buffer; seed: Buffer; n: number; element(i: number): Buffer }

// A job's chain of length n with the first `units` units in the token.
export function mint(o: Partial<BootTokenFields> & { secret?: Buffer; n?: number } = {}): Minted {
  const seed = newSeed(), n = o.n ?? 100, units = o.units ?? 10, jobId = o.jobId ?? randomBytes(16);
  const raw = mintBootToken({
    nodeId: 'node-a', jobId, anchor: iterate(seed, n), payment: iterate(seed, n - units), units,
    memoryMiB: 64, cpuShare: 100, ports: 1, lifetimeS: 60, loaderSha256: Buffer.alloc(32, 1),
    expiry: Math.floor(Date.now() / 1000) + 600, ...o,
  }, o.secret ?? SECRET);
  return { raw, jobId, seed, n, element: (i) => iterate(seed, i) };
}

// A VM as the daemon sees one, for unit tests of the daemon alone (the process
// launcher has its own end-to-end tests).
export function fakeVm(vmId: string, addr = '', o: { stop?: () => void; notices?: string[]; suspended?: boolean } = {}): Launched & { exit(): void } {
  let exit!: () => void;
  const exited = new Promise<void>((r) => (exit = r));
  return { vmId, addr, exited, exit, notify: (l) => o.notices?.push(l), suspended: () => !!o.suspended, stop: () => o.stop?.(), purge: () => { o.stop?.(); exit(); } };
}

export async function daemon(o: Partial<PacketdOptions> & { noLauncher?: boolean } = {}) {
  const launches: LaunchRequest[] = [], stopped: string[] = [];
  const d = new Packetd({
    nodeId: 'node-a', secret: SECRET, capacityMiB: 1024,
    // A launcher that records what the daemon asked for.
    launcher: o.noLauncher ? undefined : async (r) => {
      launches.push(r);
      const vmId = `vm-${launches.length}`;
      return fakeVm(vmId, `127.0.0.1:${9000 + launches.length}`, { stop: () => stopped.push(vmId) });
    },
    ...o,
  });
  const a = await d.listen(0, '127.0.0.1');
  const addr = `127.0.0.1:${a.port}`;
  const ask = (req: Parameters<typeof request>[1]): Promise<Message> => request(addr, req, { timeoutMs: 300, retries: 5 });
  return { d, addr, ask, launches, stopped };
}

export const refusal = (m: Message): string => (m.type === 'REFUSED' ? `refused:${reasonName(m.reason)}` : m.type);
