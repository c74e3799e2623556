// cstrap (thesis 8.2.3): an empty VM with a tiny TCP server. A source connects,
// proves it holds the shared key (channel handshake), uploads the loader (whose
// hash may be pinned), then streams its checkpoint; once the whole stream has
// arrived and verified, this process holds that VM, built but not started, and
// waits for the migration's decision (src/migrate/decision.ts): on a commit it
// becomes that VM; on an abort (or none) it discards it. A failed, refused or
// aborted attempt leaves the cstrap empty and listening for the next one.
import net from 'node:net';
import type { Kernel } from '../guest/kernel.js';
import { acceptChannel, type Channel } from '../migrate/channel.js';
import { openEarly, sessionChannel, type EarlySession } from './home-link.js';
import { json, Msg, parseDecision, wallNow, type Started } from '../migrate/protocol.js';
import { receiveVm, type ReceiveOptions } from '../migrate/receiver.js';
import { awaitDecision, type DecisionWait } from '../migrate/decision.js';
import { HomeSession } from '../migrate/arbiter.js';
import type { StreamHeader } from '../format/index.js';
import { warmControl } from './control.js';
import { mib } from '../util/units.js';
import type { ImageServer } from '../migrate/image-pull.js';
import { bootFromUri } from './boot-uri.js';

export interface CstrapOptions extends Omit<ReceiveOptions, 'onProgress'> {
  listen: { host: string; port: number };
  /** The key, or (a warm cstrap of the node daemon) the key and loader pin still to come: connections wait for them. */
  psk: Buffer | Promise<{ psk: Buffer; loaderHash?: string }>;
  log: (msg: string) => void;
  /** Called when the server is listening, with its bound address. */
  onListening?: (addr: string) => void;
  /** Reach the migration's home at this address instead of the one the source names (NAT, tests). */
  homeVia?: string;
}

export interface Arrival {
  kernel: Kernel;
  header: StreamHeader;
  channel: Channel;
  from: string;
  bytes: number;
  times: { endAt: number; verifiedAt: number; builtAt: number };
  /** Connections on which the source re-delivered the commit: they hear STARTED too. */
  resolvers: Channel[];
  /** The VM's session with its home, opened while the decision was awaited (HELLO waits for the start). */
  homeChannel?: EarlySession;
  /** A boot image this VM serves on (hypercube boot), until whoever told it to pull lets go. */
  serving?: ImageServer;
}

/** Listen until a VM has arrived intact and its migration committed; resolves with it (not yet running). */
export function awaitVm(o: CstrapOptions): Promise<Arrival> {
  return new Promise((resolve, reject) => {
    let busy = false;
    let waiting: { migration: string; wait: DecisionWait } | null = null;
    const key = async () =>
      Buffer.isBuffer(o.psk) ? { psk: o.psk, loaderHash: o.loaderHash } : await o.psk;
    // Any local process can connect to a warm cstrap's port; only a connection that
    // proves the key (the channel handshake) claims it, so holding connections open
    // blocks no paying customer. At most MAX_PENDING wait unproven; the oldest gives way.
    const pending = new Set<net.Socket>();
    const server = net.createServer((sock) => {
      const from = `${sock.remoteAddress}:${sock.remotePort}`;
      if (waiting) return void resolveFrom(sock, from);
      if (pending.size >= MAX_PENDING) [...pending][0].destroy();
      pending.add(sock);
      sock.once('close', () => pending.delete(sock));
      void handshake(sock, key).then(
        ({ channel, cfg }) => {
          pending.delete(sock);
          if (busy || waiting) {
            o.log(`connection from ${from} refused: a migration is already arriving`);
            return void sock.destroy();
          }
          busy = true;
          void arriveOn(o, channel, from, cfg, (w) => (waiting = w)).then(
            (a) => {
              server.close();
              resolve(a);
            },
            (err: Error) => {
              o.log(`migration from ${from} failed: ${err.message}; still waiting`);
              sock.destroy();
              busy = false;
            },
          );
        },
        (err: Error) => {
          o.log(`connection from ${from}: ${err.message}`);
          sock.destroy();
        },
      );
    });
    /** The source, telling an undecided destination the decision again on a new connection. */
    const resolveFrom = (sock: net.Socket, from: string): void => {
      void (async () => {
        try {
          const ch = await acceptChannel(sock, { psk: (await key()).psk, timeoutMs: 5_000 });
          const m = await ch.next(5_000);
          if (!m || (m.type as Msg) !== Msg.DECISION) throw new Error('expected a DECISION');
          const d = parseDecision(m.payload);
          if (!waiting || d.migration !== waiting.migration)
            throw new Error('a decision for another migration');
          waiting.wait.offer(d.decision, ch);
        } catch (err) {
          o.log(`connection from ${from} while undecided: ${(err as Error).message}`);
          sock.destroy();
        }
      })();
    };
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

type Key = () => Promise<{ psk: Buffer; loaderHash?: string }>;
type Waiting = { migration: string; wait: DecisionWait } | null;

const MAX_PENDING = 32; // connections in their handshake at once

/** The channel handshake: resolves once the peer has proved it holds the key. */
async function handshake(sock: net.Socket, key: Key) {
  const cfg = await key();
  return { channel: await acceptChannel(sock, { psk: cfg.psk, timeoutMs: 10_000 }), cfg };
}

/** One source's attempt: the stream, READY, and the decision; resolves only on a commit. */
export async function arrive(
  o: CstrapOptions,
  sock: net.Socket,
  from: string,
  key: Key,
  setWaiting: (w: Waiting) => void,
): Promise<Arrival> {
  const { channel, cfg } = await handshake(sock, key);
  return arriveOn(o, channel, from, cfg, setWaiting);
}

async function arriveOn(
  o: CstrapOptions,
  channel: Channel,
  from: string,
  cfg: Awaited<ReturnType<Key>>,
  setWaiting: (w: Waiting) => void,
): Promise<Arrival> {
  // An upload, or (a key holder telling this cstrap where to pull from) a boot URI.
  const first = await channel.next(30_000);
  if (first?.type === Msg.BOOT_URI) return bootFromUri(o, channel, first.payload, cfg);
  o.log(`source ${from} connected`);
  const t0 = performance.now();
  let early: HomeSession | null = null;
  let session: { home: string; key: string; ch: Promise<Channel> } | undefined;
  const via = (home: string | null): string | null => home && (o.homeVia ?? home);
  const got = await receiveVm(channel, {
    ...o,
    first,
    loaderHash: cfg.loaderHash,
    onProgress: (m) => o.log(m),
    onHeader: warmControl,
    // Reach home while the pages arrive: READY then costs one message, not a handshake.
    onArbiter: (a) => {
      const home = via(a.home);
      if (!home) return;
      early = new HomeSession(home, cfg.psk, a.migration, 'dest', o.log);
      early.open();
      // The VM's own session too (its HELLO waits for the state, at the end).
      if (a.sessionKey)
        session = { home: a.home!, key: a.sessionKey, ch: sessionChannel(a.home!, a.sessionKey) };
    },
  }).catch((err: Error) => {
    early?.close();
    void session?.ch.then(
      (c) => c.destroy(),
      () => undefined,
    );
    throw err;
  });
  o.log(
    `received ${mib(got.bytes)} from ${from} in ${((performance.now() - t0) / 1000).toFixed(2)} s; verified; waiting for the decision`,
  );
  const { migration } = got.arbiter;
  const wait = awaitDecision({
    ch: channel,
    arbiter: { migration, home: via(got.arbiter.home) },
    session: early,
    psk: cfg.psk,
    ready: { vmId: got.kernel.vmId },
    log: o.log,
  });
  setWaiting({ migration, wait });
  // The VM's own session with home: connected now, and (home arbitrating) its HELLO
  // said, so that its clients' bytes come with the commit.
  const relay = got.kernel.relay;
  const homeChannel =
    relay && !relay.orphan
      ? openEarly(got.kernel, got.arbiter.home === relay.config.home ? migration : null, session)
      : undefined;
  if (!homeChannel)
    void session?.ch.then(
      (c) => c.destroy(),
      () => undefined,
    );
  const d = await wait.decision;
  setWaiting(null);
  wait.close();
  if (d !== 'commit') {
    void homeChannel?.ch.then(
      (c) => c.destroy(),
      () => undefined,
    );
    for (const r of wait.resolvers)
      r.send(Msg.DECISION, json({ migration, decision: 'abort' })).catch(() => undefined);
    got.kernel.close();
    throw new Error(d === 'abort' ? 'the migration was aborted' : 'no decision came');
  }
  return { ...got, channel, from, resolvers: wait.resolvers, homeChannel };
}

/**
 * Hand the arrived, committed VM its go: start the programs and report when the
 * first instruction ran. Synchronous: anything else the caller does in this turn
 * runs before the first slice, anything it schedules after.
 */
export function resume(a: Arrival): void {
  a.kernel.scheduler.onFirstSlice = () => {
    const at = wallNow();
    // Reported after the slice, not before it: the report is not on the way to the first instruction.
    setImmediate(() => {
      const started: Started = { ...a.times, at };
      for (const ch of [a.channel, ...a.resolvers])
        ch.send(Msg.STARTED, json(started))
          .then(
            () => ch.end(),
            () => undefined,
          )
          .catch(() => undefined);
    });
  };
  a.kernel.start();
}
