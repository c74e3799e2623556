// sock_*: TCP. Listeners are preopened (--tcplisten); connections are accepted
// from them or opened as /net/tcp/HOST:PORT (connect, reached through path_open).
import { Errno, WasiError } from '../errno.js';
import { Connection, isStream, Listener, type Stream } from '../net.js';
import { RelayStream } from '../relay.js';
import { R, need } from './rights.js';
import { BLOCK, FDFLAGS, type Result, type Sys } from './syscall.js';

/** A connect in progress: kept on the process while it is blocked in path_open. */
interface PendingConnect {
  addr: string;
  result?: Connection;
  error?: number;
}

/** Register a connection in the kernel and give it a descriptor. */
function addConnection(s: Sys, c: Stream, nonblock: boolean): number {
  const id = s.k.nextSock++;
  s.k.sockets.set(id, c);
  return s.table().add({ t: 'sock', sock: id, nonblock });
}

/**
 * Connect to `addr`. Connecting takes a round trip: the first entry starts it and
 * blocks; the re-entry after the wake-up takes its outcome.
 */
export function connect(s: Sys, addr: string, nonblock: boolean): Result {
  const { k, p } = s;
  const pending = p.pending as PendingConnect | null;
  if (!pending || pending.addr !== addr) {
    // A fenced VM (a migration's final phase) opens no new connection: it waits.
    if (k.fenced) return BLOCK;
    const job: PendingConnect = { addr };
    p.pending = job;
    try {
      Connection.connect(addr, () => k.wakeAll()).then(
        (c) => {
          job.result = c;
          k.wake(p);
        },
        (err) => {
          job.error = err instanceof WasiError ? err.errno : Errno.CONNREFUSED;
          k.wake(p);
        },
      );
    } catch {
      p.pending = null;
      throw new WasiError(Errno.INVAL);
    }
    return BLOCK;
  }
  if (pending.error !== undefined) {
    p.pending = null;
    throw new WasiError(pending.error);
  }
  if (!pending.result) return BLOCK;
  p.pending = null;
  return addConnection(s, pending.result, nonblock);
}

/** `fd` as a connected socket holding the rights `r`. */
const connection = (s: Sys, fd: number, r: number): Stream => {
  const e = s.fd(fd);
  const c = s.sock(e);
  need(e, r);
  if (!isStream(c)) throw new WasiError(Errno.NOTCONN);
  return c;
};

export function sockImports(s: Sys): WebAssembly.ModuleImports {
  const { k, mem: m } = s;
  return {
    sock_accept: s.blocking('accept', (fd: number, flags: number, out: number) => {
      const e = s.fd(fd);
      const l = s.sock(e);
      need(e, R.SOCK_ACCEPT);
      if (!(l instanceof Listener)) throw new WasiError(Errno.INVAL);
      const conn = k.fenced ? null : l.accept();
      if (!conn) {
        if (e.t === 'sock' && e.nonblock) throw new WasiError(Errno.AGAIN);
        return BLOCK;
      }
      const c =
        conn instanceof RelayStream
          ? conn
          : new Connection(`${conn.remoteAddress}:${conn.remotePort}`, conn, () => k.wakeAll());
      m.setU32(out, addConnection(s, c, (flags & FDFLAGS.NONBLOCK) !== 0));
      return 0;
    }),
    sock_recv: s.blocking(
      'recv',
      (fd: number, iovs: number, n: number, riFlags: number, lenPtr: number, flagsPtr: number) => {
        const e = s.fd(fd);
        const c = connection(s, fd, R.FD_READ);
        const got = m.scatter(iovs, n, (dst) => {
          const r = c.read(dst, (riFlags & 1) !== 0);
          if (r === null && e.t === 'sock' && e.nonblock) throw new WasiError(Errno.AGAIN);
          return r;
        });
        if (got === null) return BLOCK;
        m.setU32(lenPtr, got);
        m.setU16(flagsPtr, 0);
        return 0;
      },
    ),
    sock_send: s.blocking(
      'send',
      (fd: number, iovs: number, n: number, _flags: number, lenPtr: number) => {
        m.setU32(lenPtr, connection(s, fd, R.FD_WRITE).write(m.gather(iovs, n)));
        return 0;
      },
    ),
    sock_shutdown: s.sys((fd: number, how: number) => {
      connection(s, fd, R.SOCK_SHUTDOWN).shutdown(how);
      return 0;
    }),
  };
}
