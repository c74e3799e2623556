// A roam cluster on loopback, as real processes: a broker with an SQLite ledger,
// N node daemons enrolled with it, a customer with money, and that customer's
// home. `npm start`, the home tests and bench/home.ts all start theirs here.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ROAM_BIN = path.join(root, 'bin/roam.js');

export interface ClusterOptions {
  dir: string;
  nodes: number;
  env: NodeJS.ProcessEnv;
  /** Every line a long-running process prints, with its tag. */
  onLine?: (tag: string, line: string) => void;
  onSpawn?: (p: ChildProcess) => void;
  /** Seconds a VM has to leave a draining node. */
  graceS?: number;
  /** More flags for `roam home` (e.g. --listen, --advertise). */
  homeArgs?: string[];
  /** Node i (0-based): the network namespace it runs in and the address it listens on. */
  nodeAt?: (i: number) => { ns?: string; host: string };
}

/** argv for a roam command, inside network namespace `ns` if given (as root). */
const argv = (args: string[], ns?: string): [string, string[]] =>
  ns
    ? ['ip', ['netns', 'exec', ns, process.execPath, ROAM_BIN, ...args]]
    : [process.execPath, [ROAM_BIN, ...args]];

export interface NodeProc {
  id: string;
  addr: string;
  state: string;
  proc: ChildProcess;
}

export interface Cluster {
  broker: string;
  nodes: NodeProc[];
  home: { addr: string; file: string; proc: ChildProcess };
  /** Run a roam command against this cluster (its home file given); rejects on a non-zero exit. */
  roam(args: string[]): Promise<string>;
  /** kill -9 home, and start it again with the same flags (give it a fixed --listen). */
  restartHome(): Promise<void>;
  /** Run any roam command (no home file added). */
  cli(args: string[]): Promise<string>;
  /** Everything a long-running process (broker, n1..., home) printed so far. */
  logs(tag: string): string;
  /** SIGTERM to every process of the cluster; resolves once all have exited. */
  stop(): Promise<void>;
}

export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const children: ChildProcess[] = [];
  const printed = new Map<string, string>();
  const serve = (
    tag: string,
    args: string[],
    re: RegExp,
    ns?: string,
  ): Promise<[string, ChildProcess]> => {
    const p = spawn(...argv(args, ns), {
      env: o.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(p);
    o.onSpawn?.(p);
    let out = '';
    return new Promise((resolve, reject) => {
      const take = (d: Buffer) => {
        out += String(d);
        printed.set(tag, (printed.get(tag) ?? '') + String(d));
        for (const line of String(d).split('\n').filter(Boolean)) o.onLine?.(tag, line);
        const m = re.exec(out);
        if (m) resolve([m[1], p]);
      };
      p.stdout.on('data', take);
      p.stderr.on('data', take);
      p.on('exit', (c) => reject(new Error(`roam ${args[0]} (${tag}) exited ${c}: ${out}`)));
    });
  };
  const run = (args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [ROAM_BIN, ...args], {
        env: o.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      o.onSpawn?.(p);
      let out = '',
        err = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (err += d));
      p.on('exit', (c) =>
        c === 0
          ? resolve(out.trim())
          : reject(new Error(`roam ${args.join(' ')} exited ${c}: ${err || out}`)),
      );
    });
  const f = (name: string) => path.join(o.dir, name);
  const [broker] = await serve(
    'broker',
    ['broker', '--listen', '127.0.0.1:0', '--db', f('ledger.db')],
    /listening on (http:\/\/\S+)/,
  );
  const admin = ['--broker', broker, '--admin-key', f('ledger.db.admin')];
  await run([
    'broker',
    'add-customer',
    ...admin,
    '--customer',
    'alice',
    '--balance',
    '100000000',
    '-o',
    f('alice.key'),
  ]);
  const nodes: NodeProc[] = [];
  for (let i = 1; i <= o.nodes; i++) {
    const id = `n${i}`;
    await run(['broker', 'enroll-node', ...admin, '--node', id, '-o', f(`${id}.secret`)]);
    const state = f(id);
    const at = o.nodeAt?.(i - 1) ?? { host: '127.0.0.1' };
    const [addr, proc] = await serve(
      id,
      [
        'node',
        '--id',
        id,
        '--secret-file',
        f(`${id}.secret`),
        '--listen',
        `${at.host}:0`,
        '--vm-host',
        at.host,
        '--state',
        state,
        '--warm',
        '2',
        '--grace',
        String(o.graceS ?? 10),
      ],
      /listening on udp:\/\/(\S+)/,
      at.ns,
    );
    nodes.push({ id, addr, state, proc });
  }
  const file = f('home.json');
  const homeArgv = [
    'home',
    '--broker',
    broker,
    '--customer-key',
    f('alice.key'),
    '--db',
    f('home.db'),
    '--state',
    file,
    ...nodes.flatMap((n) => ['--node', n.addr]),
    ...(o.homeArgs ?? []),
  ];
  const [addr, proc] = await serve('home', homeArgv, /home listening on (\S+)/);
  const home = { addr, file, proc };
  return {
    broker,
    nodes,
    home,
    restartHome: async () => {
      home.proc.kill('SIGKILL');
      await new Promise((r) =>
        home.proc.exitCode !== null || home.proc.signalCode !== null
          ? r(null)
          : home.proc.once('exit', r),
      );
      printed.set('home', '');
      [home.addr, home.proc] = await serve('home', homeArgv, /home listening on (\S+)/);
    },
    logs: (tag) => printed.get(tag) ?? '',
    cli: run,
    roam: (args) => run([args[0], '--home-file', file, ...args.slice(1)]),
    stop: async () => {
      // (a process killed by a signal has no exit code, only a signal code)
      const left = children.filter((p) => p.exitCode === null && p.signalCode === null);
      for (const p of left) p.kill('SIGTERM');
      await Promise.all(left.map((p) => new Promise((r) => p.once('exit', r))));
    },
  };
}

/**
 * `roam submit` the game server (examples/game-server.wasm) to node `node` with
 * one published port (home picks it): the job's id and where clients connect.
 */
export async function submitGame(
  c: Cluster,
  node = 0,
  extra: string[] = [],
): Promise<{ job: string; host: string; port: number }> {
  const out = await c.roam([
    'submit',
    '--json',
    '--node',
    c.nodes[node].addr,
    '--publish',
    '127.0.0.1:0:7000',
    ...extra,
    path.join(root, 'examples/game-server.wasm'),
  ]);
  const s = JSON.parse(out) as { job: string; published: string[] };
  const addr = s.published[0].split('->')[0];
  const at = addr.lastIndexOf(':');
  return { job: s.job, host: addr.slice(0, at), port: Number(addr.slice(at + 1)) };
}
