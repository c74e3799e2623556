// The VM's control socket: a Unix socket in $ROAM_HOME/vms that `roam checkpoint`,
// `roam ps` (and later `roam migrate`) talk to with JSON lines. It only ever asks
// the VM to do things; the VM does them itself.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { roamHome } from '../util/home.js';
import { describeError, RoamError } from '../util/errors.js';
import {
  parseControlRequest,
  type ControlEvent,
  type ControlRequest,
  type FinalEvent,
  type ProgressEvent,
} from './control-protocol.js';

export type * from './control-protocol.js';

export interface VmRecord {
  id: string;
  pid: number;
  program: string;
  args: string[];
  socket: string;
  started: string;
  restoredFrom?: string;
  /** An empty cstrap waiting for a VM (at `listen`), or a VM (the default). */
  kind?: 'vm' | 'cstrap';
  listen?: string;
}

export type ControlHandler = (
  req: ControlRequest,
  emit: (e: ProgressEvent) => void,
) => Promise<FinalEvent>;

export const vmDir = (): string => path.join(roamHome(), 'vms');

/**
 * Calls `fn` with a name for the Unix socket `socket` that fits a socket address
 * (107 bytes): the path itself, or, for a longer one (a node's VM folders under a
 * long --state or TMPDIR), its name relative to its folder, which is the process'
 * working folder for that moment (bind, connect and the unlink on close take the
 * name synchronously). The socket stays in its owner-only folder.
 */
export function viaFolder<T>(socket: string, fn: (name: string) => T): T {
  if (Buffer.byteLength(socket) <= 100) return fn(socket);
  const back = process.cwd();
  process.chdir(path.dirname(socket));
  try {
    return fn(`./${path.basename(socket)}`);
  } finally {
    process.chdir(back);
  }
}

export function serveControl(
  rec: Omit<VmRecord, 'socket' | 'pid' | 'started'>,
  handler: ControlHandler,
): { record: VmRecord; close(): void } {
  fs.mkdirSync(vmDir(), { recursive: true, mode: 0o700 });
  fs.chmodSync(vmDir(), 0o700); // an older folder too: only its owner may reach the sockets
  // Named by id and pid: while a VM migrates between two processes on one host,
  // both copies have the same id for a moment.
  const socket = path.join(vmDir(), `${rec.id}-${process.pid}.sock`);
  const file = path.join(vmDir(), `${rec.id}-${process.pid}.json`);
  try {
    fs.unlinkSync(socket);
  } catch {
    /* not there */
  }
  const server = net.createServer((conn) => {
    const rl = readline.createInterface({ input: conn });
    const emit = (e: ControlEvent) => {
      if (!conn.destroyed) conn.write(JSON.stringify(e) + '\n');
    };
    const fail = (err: unknown): void => {
      const e = describeError(err);
      emit({ event: 'error', message: e.message, code: e.code });
      conn.end();
    };
    rl.on('line', (line) => {
      let req: ControlRequest;
      try {
        req = parseControlRequest(line);
      } catch (err) {
        fail(err);
        return;
      }
      handler(req, emit).then((res) => {
        emit(res);
        conn.end();
      }, fail);
    });
    conn.on('error', () => {});
  });
  viaFolder(socket, (name) => server.listen(name, () => fs.chmodSync(socket, 0o600)));
  server.unref();
  const record: VmRecord = { ...rec, socket, pid: process.pid, started: new Date().toISOString() };
  fs.writeFileSync(file, JSON.stringify(record, null, 1));
  const cleanup = () => {
    fs.rmSync(file, { force: true });
    fs.rmSync(socket, { force: true });
  };
  process.on('exit', cleanup);
  return {
    record,
    close() {
      viaFolder(socket, () => server.close());
      cleanup();
    },
  };
}

/**
 * A process' first Unix-socket server costs milliseconds of one-time setup in Node
 * (later ones a tenth of one). An arriving VM serves its control socket between the
 * end of its stream and its first instruction, so the cstrap pays this once while
 * the pages arrive, with a throwaway server (Node removes its socket on close).
 */
export function warmControl(): void {
  try {
    fs.mkdirSync(vmDir(), { recursive: true, mode: 0o700 });
    const s = net.createServer();
    s.on('error', () => {});
    const socket = path.join(vmDir(), `.warm-${process.pid}.sock`);
    viaFolder(socket, (name) => s.listen(name, () => viaFolder(socket, () => s.close())));
    s.unref();
  } catch {
    /* only an optimisation */
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Running VMs on this host (stale records of dead VMs are removed); `dir`: another registry. */
export function listVms(dir = vmDir()): VmRecord[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: VmRecord[] = [];
  for (const n of names.filter((x) => x.endsWith('.json'))) {
    try {
      const r = JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) as VmRecord;
      if (alive(r.pid)) out.push(r);
      else {
        fs.rmSync(path.join(dir, n), { force: true });
        fs.rmSync(r.socket, { force: true });
      }
    } catch {
      /* a record being written */
    }
  }
  return out.sort((a, b) => a.started.localeCompare(b.started));
}

/** Find a VM by id, unique id prefix, or pid. */
export function findVm(ref: string): VmRecord {
  const vms = listVms();
  const hits = vms.filter((v) => v.id === ref || String(v.pid) === ref || v.id.startsWith(ref));
  if (hits.length === 1) return hits[0];
  // One VM caught mid-migration on this host: the newer process is where it is going.
  if (hits.length > 1 && hits.every((h) => h.id === hits[0].id)) return hits[hits.length - 1];
  if (hits.length === 0)
    throw new RoamError('no-such-vm', `no running VM "${ref}" on this host (see \`roam ps\`)`);
  throw new RoamError('ambiguous-vm', `"${ref}" matches ${hits.length} VMs; give more of the id`);
}

const isProgress = (e: ControlEvent): e is ProgressEvent =>
  e.event === 'round' || e.event === 'progress' || e.event === 'phase';

/** Send one request; `onEvent` sees progress events; resolves with the final one. */
export function controlRequest<T extends FinalEvent>(
  vm: VmRecord,
  req: ControlRequest,
  onEvent?: (e: ProgressEvent) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const conn = viaFolder(vm.socket, (name) => net.connect(name));
    let last: ControlEvent | null = null;
    conn.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
            ? `no running VM ${vm.id} any more: it exited (its control socket ${vm.socket} is gone)`
            : `cannot reach VM ${vm.id} at ${vm.socket}: ${err.message}`,
        ),
      ),
    );
    conn.on('connect', () => conn.write(JSON.stringify(req) + '\n'));
    const rl = readline.createInterface({ input: conn });
    rl.on('error', () => undefined); // readline repeats the socket's error, handled above
    rl.on('line', (line) => {
      const e = JSON.parse(line) as ControlEvent;
      if (last && isProgress(last)) onEvent?.(last);
      last = e;
    });
    conn.on('close', () => {
      if (!last)
        return reject(
          new Error(`VM ${vm.id} closed the control connection without answering (did it exit?)`),
        );
      if (last.event === 'error') reject(new RoamError(last.code ?? 'vm-refused', last.message));
      else if (isProgress(last))
        reject(
          new Error(
            `VM ${vm.id} closed the control connection before the request finished (did it exit?)`,
          ),
        );
      else resolve(last as T);
    });
  });
}
