// `npm start`: the main demo, a local cluster on loopback. A broker sells
// laundromat tokens; two node daemons each start empty VMs for boot tokens. A
// customer boots a VM on node n1, uploads a real WASI program into it (a C echo
// server), and a client talks to it. Then the VM migrates itself live to an
// empty VM on node n2 while the client keeps talking; the client reconnects and
// the server carries on with its state; the measured freeze and downtime are
// printed. Both nodes metered the VM; the customer refunds what is left.
// (The customer's home, which will relay connections and order migrations, comes
// with a later issue: here the demo reaches the VM through its control socket.)
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const roamBin = path.join(root, 'bin/roam.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roam-demo-'));
// The customer's roam folder: its prepared-module cache is kept between runs.
const env = { ...process.env, ROAM_HOME: process.env.ROAM_HOME ?? path.join(root, '.roam') };
const say = (m: string) => console.log(`\x1b[1mdemo:\x1b[0m ${m}`);
const children: ChildProcess[] = [];

/** A long-running roam command; resolves with the first match of `re` in its output. */
function serve(tag: string, args: string[], re: RegExp): Promise<string> {
  const p = spawn(process.execPath, [roamBin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(p);
  let out = '';
  return new Promise((resolve, reject) => {
    const take = (d: Buffer) => {
      out += String(d);
      for (const line of String(d).split('\n').filter(Boolean))
        process.stdout.write(`  [${tag}] ${line}\n`);
      const m = re.exec(out);
      if (m) resolve(m[1]);
    };
    p.stdout.on('data', take);
    p.stderr.on('data', take);
    p.on('exit', (c) => reject(new Error(`roam ${args[0]} exited ${c}: ${out}`)));
  });
}

function run(args: string[], extraEnv: Record<string, string> = {}): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [roamBin, ...args], {
      env: { ...env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '',
      err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => {
      err += d;
      process.stdout.write(`  [roam ${args[0]}] ${d}`);
    });
    p.on('exit', (c) => (c === 0 ? res(out.trim()) : rej(new Error(err))));
  });
}

async function connect(port: number) {
  for (let i = 0; ; i++) {
    try {
      const s = await new Promise<net.Socket>((res, rej) => {
        const c = net.connect(port, '127.0.0.1', () => res(c));
        c.once('error', rej);
      });
      s.on('error', () => {}); // a reset shows up as the end of the lines
      const it = readline.createInterface({ input: s })[Symbol.asyncIterator]();
      return {
        s,
        async ask(line: string) {
          const t0 = performance.now();
          s.write(line + '\n');
          const next = await it.next();
          if (next.done) throw new Error('connection closed');
          const r = next.value;
          console.log(
            `  client> ${line.padEnd(18)} server> ${r}  (${(performance.now() - t0).toFixed(1)} ms)`,
          );
          return r;
        },
      };
    } catch (e) {
      if (i > 200) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

try {
  say('a broker with an SQLite ledger, two nodes enrolled, a customer with money');
  const broker = await serve(
    'broker',
    ['broker', '--listen', '127.0.0.1:0', '--db', path.join(dir, 'ledger.db')],
    /listening on (http:\/\/\S+)/,
  );
  for (const n of ['n1', 'n2'])
    await run([
      'broker',
      'enroll-node',
      '--broker',
      broker,
      '--admin-key',
      path.join(dir, 'ledger.db.admin'),
      '--node',
      n,
      '-o',
      path.join(dir, `${n}.secret`),
    ]);
  await run([
    'broker',
    'add-customer',
    '--broker',
    broker,
    '--admin-key',
    path.join(dir, 'ledger.db.admin'),
    '--customer',
    'alice',
    '--balance',
    '10000',
    '-o',
    path.join(dir, 'alice.key'),
  ]);
  const nodes: Record<string, string> = {};
  for (const n of ['n1', 'n2']) {
    nodes[n] = await serve(
      n,
      [
        'node',
        '--id',
        n,
        '--secret-file',
        path.join(dir, `${n}.secret`),
        '--listen',
        '127.0.0.1:0',
        '--state',
        path.join(dir, n),
        '--warm',
        '1',
      ],
      /listening on udp:\/\/(\S+)/,
    );
  }

  const job = (n: string) => path.join(dir, `${n}.token`);
  const bootOn = async (n: string): Promise<string> => {
    console.log(
      `  ${await run(['tokens', 'buy', '--broker', broker, '--customer-key', path.join(dir, 'alice.key'), '--node', n, '--count', '2000', '-o', job(n)])}`,
    );
    const accepted = await run(['boot', job(n), '--node', nodes[n]]);
    console.log(`  ${accepted}`);
    return /cstrap (\S+)/.exec(accepted)![1];
  };

  say(
    'buying a token for n1 and booting it: the node answers with an empty VM (cstrap) from its warm pool',
  );
  const on1 = await bootOn('n1');
  const port = 7000 + Math.floor(Math.random() * 2000);
  say(`uploading examples/echo-server.wasm (C, wasi-libc) into it, listening on 127.0.0.1:${port}`);
  say(
    '(the first run prepares the module here: write barrier, safepoints, Asyncify; cached afterwards, and sent along)',
  );
  const uploaded = await run([
    'run',
    '--to',
    on1,
    '--key',
    `${job('n1')}.key`,
    '--tcplisten',
    `127.0.0.1:${port}`,
    path.join(root, 'examples/echo-server.wasm'),
  ]);
  console.log(`  ${uploaded}`);
  const vmId = /uploaded vm (\w+)/.exec(uploaded)![1];
  let c = await connect(port);
  await c.ask('hello');
  await c.ask('how are you');
  console.log(`  ${await run(['tokens', 'status', '--token', job('n1'), '--node', nodes.n1])}`);

  say('buying a token for n2 and booting an empty VM there');
  const on2 = await bootOn('n2');

  say(
    "starting the customer's home: it arbitrates the migration (one decision, in its SQLite ledger, before anyone hears it)",
  );
  const homeAddr = await serve(
    'home',
    [
      'home',
      '--listen',
      '127.0.0.1:0',
      '--db',
      path.join(dir, 'home.db'),
      '--key',
      `${job('n2')}.key`,
    ],
    /home listening on (\S+)/,
  );

  say(`migrating VM ${vmId} live from n1 to n2 while the client keeps talking to it`);
  let n = 0,
    moving = true;
  const talking = (async () => {
    while (moving) {
      try {
        await c.ask(`during migration ${n++}`);
        await new Promise((r) => setTimeout(r, 20));
      } catch {
        say(
          'the connection to the old host was cut; reconnecting (the new host re-opens the listener)',
        );
        c = await connect(port);
      }
    }
  })();
  // The VM's control socket is in its folder on n1 (a stand-in for the home's session).
  const n1vm = fs
    .readdirSync(path.join(dir, 'n1'))
    .map((d) => path.join(dir, 'n1', d))
    // (warm empty VMs have a control socket of their own now: pick the folder of this VM's)
    .find(
      (d) =>
        fs.existsSync(path.join(d, 'vms')) &&
        fs.readdirSync(path.join(d, 'vms')).some((f) => f.startsWith(vmId)),
    )!;
  const result = await run(
    ['migrate', vmId, '--to', on2, '--key', `${job('n2')}.key`, '--home', homeAddr],
    { ROAM_HOME: n1vm },
  );
  moving = false;
  await talking;
  console.log(`  ${result}`);
  await c.ask('on the new host');
  console.log(
    `  home's ledger: ${await run(['home', 'ledger', '--db', path.join(dir, 'home.db')])}`,
  );
  await new Promise((r) => setTimeout(r, 1500)); // a meter tick on each node
  for (const node of ['n1', 'n2'])
    console.log(
      `  ${node}: ${await run(['tokens', 'status', '--token', job(node), '--node', nodes[node]])}`,
    );

  say(
    'refunding both jobs: each node signs a certificate for what is unspent, the broker pays it back once',
  );
  for (const node of ['n1', 'n2'])
    console.log(
      `  ${await run(['tokens', 'refund', '--broker', broker, '--customer-key', path.join(dir, 'alice.key'), '--token', job(node), '--node', nodes[node]])}`,
    );
  const downtime = /downtime (\S+ ms) \(source freeze (\S+ ms)\)/.exec(result);
  say(
    `done: the VM moved between nodes with a source freeze of ${downtime?.[2] ?? '?'} and ${downtime?.[1] ?? '?'} from freeze to its first instruction on n2.`,
  );
  say('Try it yourself: node bin/roam.js --help');
} finally {
  for (const p of children) p.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  fs.rmSync(dir, { recursive: true, force: true });
}
