// Shared by the migration tests: cstraps as real processes, and a TCP proxy that
// sits between source and destination to cut, corrupt or replay the stream.
import net from 'node:net';
import { start, until, type Running } from './helpers.js';

export interface Cstrap extends Running {
  /** HOST:PORT it listens on. */
  addr: string;
}

export async function cstrap(extra: string[] = []): Promise<Cstrap> {
  const r = start(['cstrap', '--listen', '127.0.0.1:0', ...extra]);
  r.vmId.catch(() => {});
  let addr = '';
  await until(
    () => {
      const m = /cstrap listening on (\S+)/.exec(r.stderr());
      if (m) addr = m[1];
      return addr !== '' || r.proc.exitCode !== null;
    },
    'cstrap to listen',
    30_000,
  );
  if (!addr) throw new Error(`cstrap did not start: ${r.stderr()}`);
  return { ...r, addr };
}

const HELLO = 72;

/**
 * A frame-aware proxy: after the 72-byte hellos, the channel is a sequence of
 * [u32 BE length][length bytes] frames. `onFrame(dir, index, frame)` may return the
 * frame (forward), an array of frames (e.g. duplicated), or 'cut' to kill the
 * connection in both directions.
 */
export type FrameHook = (
  dir: 'up' | 'down',
  index: number,
  frame: Buffer,
) => Buffer | Buffer[] | 'cut';

export interface Proxy {
  addr: string;
  close(): void;
  readonly cuts: number;
  /** Hold every byte in both directions (a silent link; new connections too) until `heal`. */
  partition(): void;
  /** Deliver what was held, in order, and pass traffic again. */
  heal(): void;
  /** Kill every connection through the proxy now (both ends see it close). */
  cutAll(): void;
}

/**
 * `keyed`: the target is home, whose clients send a 16-byte key hint ahead of the
 * handshake (src/migrate/keyed.ts): passed on untouched.
 */
export async function proxy(
  target: string,
  hook: FrameHook = (_d, _i, f) => f,
  keyed = false,
): Promise<Proxy> {
  const [host, port] = [
    target.slice(0, target.lastIndexOf(':')),
    Number(target.slice(target.lastIndexOf(':') + 1)),
  ];
  const state = { cuts: 0, held: false };
  const flushers: Array<() => void> = [];
  const killers = new Set<() => void>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    const kill = () => {
      state.cuts++;
      client.destroy();
      upstream.destroy();
    };
    killers.add(kill);
    client.on('close', () => killers.delete(kill));
    const pipe = (from: net.Socket, to: net.Socket, dir: 'up' | 'down') => {
      let buf = Buffer.alloc(0);
      let hint = !(keyed && dir === 'up');
      let hello = false;
      let index = 0;
      const pending: Buffer[] = [];
      const feed = (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          if (!hint) {
            if (buf.length < 16) return;
            to.write(buf.subarray(0, 16));
            buf = buf.subarray(16);
            hint = true;
          }
          if (!hello) {
            if (buf.length < HELLO) return;
            to.write(buf.subarray(0, HELLO));
            buf = buf.subarray(HELLO);
            hello = true;
          }
          if (buf.length < 4) return;
          const len = buf.readUInt32BE(0);
          if (buf.length < 4 + len) return;
          const frame = buf.subarray(0, 4 + len);
          buf = buf.subarray(4 + len);
          const out = hook(dir, index++, frame);
          if (out === 'cut') return kill();
          for (const f of Array.isArray(out) ? out : [out]) to.write(f);
        }
      };
      flushers.push(() => {
        for (const d of pending.splice(0)) feed(d);
      });
      from.on('data', (d: Buffer) => (state.held ? pending.push(d) : feed(d)));
      from.on('end', () => (state.held ? undefined : to.end()));
      from.on('error', () => kill());
    };
    pipe(client, upstream, 'up');
    pipe(upstream, client, 'down');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address() as net.AddressInfo;
  return {
    addr: `127.0.0.1:${a.port}`,
    close: () => server.close(),
    get cuts() {
      return state.cuts;
    },
    partition: () => void (state.held = true),
    heal: () => {
      state.held = false;
      for (const f of flushers) f();
    },
    cutAll: () => {
      for (const k of [...killers]) k();
    },
  };
}

/** Length on the wire of a channel frame carrying `payload` (length field, type, payload, tag). */
export const frameBytes = (payload: string): number => 4 + 1 + Buffer.byteLength(payload) + 16;

/** A READY frame (destination to source) for a VM id of 12 hex digits. */
export const READY_BYTES = frameBytes(JSON.stringify({ vmId: '0'.repeat(12) }));
/** A DECISION / DECIDED frame. */
export const decisionBytes = (d: 'commit' | 'abort'): number =>
  frameBytes(JSON.stringify({ migration: '0'.repeat(32), decision: d }));

export interface Home extends Running {
  addr: string;
  db: string;
}

/** `roam home` as a real process, its ledger in `dir`. */
export async function home(dir: string, listen = '127.0.0.1:0'): Promise<Home> {
  const db = `${dir}/home.db`;
  const r = start(['home', '--listen', listen, '--db', db]);
  r.vmId.catch(() => {});
  let addr = '';
  await until(
    () => {
      const m = /home listening on (\S+)/.exec(r.stderr());
      if (m) addr = m[1];
      return addr !== '' || r.proc.exitCode !== null;
    },
    'home to listen',
    30_000,
  );
  if (!addr) throw new Error(`home did not start: ${r.stderr()}`);
  return { ...r, addr, db };
}
