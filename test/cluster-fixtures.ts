// A cluster in real processes, for the control-plane tests and bench: a broker,
// a Pulse rendezvous server, the control service, N node daemons and an agent
// on each, all started through the `roam` CLI as an operator would.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { example, roam, sleep, start, tmpdir, type Running } from './helpers.js';

export async function serve(
  args: string[],
  re: RegExp,
  ms = 60_000,
): Promise<{ r: Running; match: string }> {
  const r = start(args);
  r.vmId.catch(() => undefined);
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    const m = re.exec(r.stdout() + r.stderr());
    if (m) return { r, match: m[1] };
    if (r.proc.exitCode !== null) break;
    await sleep(20);
  }
  throw new Error(`roam ${args.join(' ')} did not start: ${r.stderr()}`);
}

async function ok(args: string[]): Promise<string> {
  const r = await roam(args);
  if (r.code !== 0) throw new Error(`roam ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** One line to an echo server, its answer back (null: nobody answered). */
export function echo(port: number, line: string, ms = 3000): Promise<string | null> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`${line}\n`));
    let got = '';
    const t = setTimeout(() => {
      s.destroy();
      resolve(null);
    }, ms);
    s.on('data', (d) => {
      got += String(d);
      if (got.includes('\n')) {
        clearTimeout(t);
        s.end();
        resolve(got.trim());
      }
    });
    s.on('error', () => {
      clearTimeout(t);
      resolve(null);
    });
  });
}

export interface Node {
  id: string;
  daemon: Running;
  addr: string;
  state: string;
  keyFile: string;
  cache: string;
  agent?: Running;
}

export interface Cluster {
  dir: string;
  broker: string;
  rendezvous: string;
  control: string;
  adminKey: string;
  customerKey: string;
  nodes: Node[];
  kids: Running[];
  startAgent(n: Node, extra?: string[]): Promise<void>;
  stop(): Promise<void>;
}

export async function cluster(count: number, agentArgs: string[] = []): Promise<Cluster> {
  const dir = tmpdir('cluster');
  const kids: Running[] = [];
  const keep = (x: { r: Running; match: string }) => (kids.push(x.r), x.match);
  const broker = keep(
    await serve(
      [
        'broker',
        '--listen',
        '127.0.0.1:0',
        '--db',
        path.join(dir, 'ledger.db'),
        '--chain-length',
        '5000',
      ],
      /listening on (http:\/\/\S+)/,
    ),
  );
  const brokerAdmin = path.join(dir, 'ledger.db.admin');
  const brokerKey = path.join(dir, 'alice.broker');
  await ok([
    'broker',
    'add-customer',
    '--broker',
    broker,
    '--admin-key',
    brokerAdmin,
    '--customer',
    'alice',
    '--balance',
    '100000000',
    '-o',
    brokerKey,
  ]);
  const rendezvous = keep(await serve(['pulse', '--listen', '127.0.0.1:0'], /listening on (\S+)/));
  const adminKey = path.join(dir, 'admin.key');
  const control = keep(
    await serve(
      [
        'control',
        '--listen',
        '127.0.0.1:0',
        '--db',
        path.join(dir, 'control.db'),
        '--broker',
        broker,
        '--broker-key',
        brokerKey,
        '--rendezvous',
        rendezvous,
        '--admin-key-out',
        adminKey,
      ],
      /listening on (http:\/\/\S+)/,
    ),
  );
  const customerKey = path.join(dir, 'alice.key');
  await ok([
    'control',
    'add-customer',
    '--control',
    control,
    '--key',
    adminKey,
    '--id',
    'alice',
    '-o',
    customerKey,
  ]);
  const nodes: Node[] = [];
  for (let i = 1; i <= count; i++) {
    const id = `n${i}`;
    const secret = path.join(dir, `${id}.secret`);
    await ok([
      'broker',
      'enroll-node',
      '--broker',
      broker,
      '--admin-key',
      brokerAdmin,
      '--node',
      id,
      '-o',
      secret,
    ]);
    const keyFile = path.join(dir, `${id}.key`);
    await ok([
      'control',
      'add-node',
      '--control',
      control,
      '--key',
      adminKey,
      '--id',
      id,
      '-o',
      keyFile,
    ]);
    const state = path.join(dir, `${id}-vms`);
    const d = await serve(
      [
        'node',
        '--id',
        id,
        '--secret-file',
        secret,
        '--listen',
        '127.0.0.1:0',
        '--state',
        state,
        '--warm',
        '1',
      ],
      /listening on udp:\/\/(\S+)/,
    );
    kids.push(d.r);
    nodes.push({
      id,
      daemon: d.r,
      addr: d.match,
      state,
      keyFile,
      cache: path.join(dir, `${id}-agent`),
    });
  }
  const startAgent = async (n: Node, extra: string[] = agentArgs): Promise<void> => {
    const a = await serve(
      [
        'agent',
        '--control',
        control,
        '--key',
        n.keyFile,
        '--node',
        n.addr,
        '--state',
        n.state,
        '--cache',
        n.cache,
        ...extra,
      ],
      /(agent: started)/,
    );
    kids.push(a.r);
    n.agent = a.r;
  };
  for (const n of nodes) await startAgent(n);
  return {
    dir,
    broker,
    rendezvous,
    control,
    adminKey,
    customerKey,
    nodes,
    kids,
    startAgent,
    async stop() {
      // Agents first (so nothing reboots), then the daemons (their VMs go with them), then the services.
      for (const n of nodes) n.agent?.proc.kill('SIGKILL');
      for (const n of nodes) n.daemon.proc.kill('SIGTERM');
      // A daemon waits for its VMs to suspend; one that takes too long is killed (its VMs follow it).
      await Promise.race([Promise.all(nodes.map((n) => n.daemon.exited)), sleep(15_000)]);
      for (const n of nodes) n.daemon.proc.kill('SIGKILL');
      for (const k of kids) k.proc.kill('SIGKILL');
    },
  };
}

export async function upload(c: Cluster, program = example('echo-server')): Promise<string> {
  return (
    await ok(['control', 'upload', program, '--control', c.control, '--key', c.customerKey])
  ).trim();
}

export async function submit(c: Cluster, description: unknown): Promise<{ version: number }> {
  const f = path.join(c.dir, `desc-${Date.now()}.json`);
  fs.writeFileSync(f, JSON.stringify(description));
  return JSON.parse(
    await ok(['control', 'submit', f, '--control', c.control, '--key', c.customerKey]),
  ) as { version: number };
}

export interface Instance {
  index: number;
  node: string;
  jobId: string;
  state: string;
  from: string | null;
}

export async function status(c: Cluster, name: string): Promise<{ instances: Instance[] }> {
  return JSON.parse(
    await ok(['control', 'status', name, '--control', c.control, '--key', c.customerKey]),
  ) as { instances: Instance[] };
}
