// cstrap (thesis 8.2.3): an empty VM with a tiny TCP server. A source connects,
// proves it holds the shared key (channel handshake), uploads the loader (whose
// hash may be pinned), then streams its checkpoint; once the whole stream has
// arrived and verified, this process becomes that VM. A failed or refused
// attempt leaves the cstrap empty and listening for the next one.
import net from 'node:net';
import type { Kernel } from '../guest/kernel.js';
import { acceptChannel, type Channel } from '../migrate/channel.js';
import { json, Msg, wallNow, type Confirm, type Started } from '../migrate/protocol.js';
import { receiveVm, type ReceiveOptions } from '../migrate/receiver.js';
import type { StreamHeader } from '../format/index.js';
import { warmControl } from './control.js';

export interface CstrapOptions extends Omit<ReceiveOptions, 'onProgress'> {
  listen: { host: string; port: number };
  /** The key, or (a warm cstrap of the node daemon) the key and loader pin still to come: connections wait for them. */
  psk: Buffer | Promise<{ psk: Buffer; loaderHash?: string }>;
  log: (msg: string) => void;
  /** Called when the server is listening, with its bound address. */
  onListening?: (addr: string) => void;
}

export interface Arrival {
  kernel: Kernel;
  header: StreamHeader;
  channel: Channel;
  from: string;
  bytes: number;
  times: { endAt: number; verifiedAt: number; builtAt: number };
}

/** Listen until a VM has arrived intact; resolves with it (not yet running). */
export function awaitVm(o: CstrapOptions): Promise<Arrival> {
  return new Promise((resolve, reject) => {
    let busy = false;
    const server = net.createServer((sock) => {
      const from = `${sock.remoteAddress}:${sock.remotePort}`;
      if (busy) {
        o.log(`connection from ${from} refused: a migration is already arriving`);
        sock.destroy();
        return;
      }
      busy = true;
      void (async () => {
        try {
          const cfg = Buffer.isBuffer(o.psk)
            ? { psk: o.psk, loaderHash: o.loaderHash }
            : await o.psk;
          const channel = await acceptChannel(sock, { psk: cfg.psk, timeoutMs: 10_000 });
          o.log(`source ${from} connected`);
          const t0 = performance.now();
          const got = await receiveVm(channel, {
            ...o,
            loaderHash: cfg.loaderHash,
            onProgress: (m) => o.log(m),
            onHeader: warmControl,
          });
          server.close();
          o.log(
            `received ${(got.bytes / 1048576).toFixed(1)} MiB from ${from} in ${((performance.now() - t0) / 1000).toFixed(2)} s; verified`,
          );
          resolve({ ...got, channel, from });
        } catch (err) {
          o.log(`migration from ${from} failed: ${(err as Error).message}; still waiting`);
          sock.destroy();
          busy = false;
        }
      })();
    });
    server.once('error', (err) =>
      reject(
        new Error(`cstrap cannot listen on ${o.listen.host}:${o.listen.port}: ${err.message}`),
      ),
    );
    server.listen(o.listen.port, o.listen.host, () => {
      const a = server.address() as net.AddressInfo;
      o.onListening?.(`${a.address}:${a.port}`);
    });
  });
}

/**
 * Hand the arrived VM its go: start the programs, confirm to the source (which
 * then ends, or carries on for a fork), and report when the first instruction
 * ran. The start comes first: nothing the confirmation costs is downtime, and the
 * VM runs here from the verified END on, whether or not the source hears of it.
 * Synchronous: anything else the caller does in this turn runs before the first
 * slice, anything it schedules after.
 */
export function resume(a: Arrival): void {
  a.kernel.scheduler.onFirstSlice = () => {
    const at = wallNow();
    // Reported after the slice, not before it: the report is not on the way to the first instruction.
    setImmediate(() => {
      const started: Started = { ...a.times, at };
      a.channel
        .send(Msg.STARTED, json(started))
        .then(
          () => a.channel.end(),
          () => undefined,
        )
        .catch(() => undefined);
    });
  };
  a.kernel.start();
  const confirm: Confirm = { vmId: a.kernel.vmId };
  a.channel.send(Msg.CONFIRM, json(confirm)).catch(() => undefined);
}
