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

export async function proxy(
  target: string,
  hook: FrameHook,
): Promise<{ addr: string; close(): void; cuts: number }> {
  const [host, port] = [
    target.slice(0, target.lastIndexOf(':')),
    Number(target.slice(target.lastIndexOf(':') + 1)),
  ];
  const state = { cuts: 0 };
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    const kill = () => {
      state.cuts++;
      client.destroy();
      upstream.destroy();
    };
    const pipe = (from: net.Socket, to: net.Socket, dir: 'up' | 'down') => {
      let buf = Buffer.alloc(0);
      let hello = false;
      let index = 0;
      from.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
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
      });
      from.on('end', () => to.end());
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
  };
}
