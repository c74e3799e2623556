// `npm start`: the main demo. A real WASI program (a C echo server) runs in a roam
// VM; a client talks to it; the VM migrates itself live into an empty VM (a
// cstrap, another OS process) while the client keeps talking; the client
// reconnects and the server carries on with its state; the measured freeze and
// downtime are printed. Then the same VM is checkpointed to disk live.
// (The cluster of broker, nodes and home arrives with issues #4-#5.)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const roamBin = path.join(root, 'bin/roam.js');
const home = process.env.ROAM_HOME ?? path.join(root, '.roam');
const env = { ...process.env, ROAM_HOME: home };
const say = (m: string) => console.log(`\x1b[1mdemo:\x1b[0m ${m}`);

function vm(args: string[]) {
  const p = spawn(process.execPath, [roamBin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stdout.on('data', (d) => process.stdout.write(`  [vm stdout] ${d}`));
  const id = new Promise<string>((res, rej) => {
    p.stderr.on('data', (d) => {
      err += d;
      const m = /roam: vm ([0-9a-f]+)/.exec(err);
      if (m) res(m[1]);
      for (const line of String(d).split('\n').filter(Boolean)) process.stdout.write(`  [vm] ${line}\n`);
    });
    p.on('exit', () => rej(new Error(`VM exited early: ${err}`)));
  });
  const exited = new Promise<number>((r) => p.on('exit', (c) => r(c ?? 1)));
  return { p, id, exited };
}

function run(args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [roamBin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => { err += d; process.stdout.write(`  [roam] ${d}`); });
    p.on('exit', (c) => (c === 0 ? res(out) : rej(new Error(err))));
  });
}

async function connect(port: number) {
  for (let i = 0; ; i++) {
    try {
      const s = await new Promise<net.Socket>((res, rej) => { const c = net.connect(port, '127.0.0.1', () => res(c)); c.once('error', rej); });
      s.on('error', () => {}); // a reset shows up as the end of the lines
      const it = readline.createInterface({ input: s })[Symbol.asyncIterator]();
      return {
        s,
        async ask(line: string) {
          const t0 = performance.now();
          s.write(line + '\n');
          const next = await it.next();
          if (next.done) throw new Error('connection closed');
          const r = next.value as string;
          console.log(`  client> ${line.padEnd(18)} server> ${r}  (${(performance.now() - t0).toFixed(1)} ms)`);
          return r;
        },
      };
    } catch (e) {
      if (i > 200) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const port = 7000 + Math.floor(Math.random() * 2000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roam-demo-'));
const file = path.join(dir, 'echo.ckpt');

say(`starting examples/echo-server.wasm (C, wasi-libc) in a VM listening on 127.0.0.1:${port}`);
say('(the first run prepares the module: write barrier, safepoints, Asyncify; it is cached afterwards)');
const a = vm(['run', '--tcplisten', `127.0.0.1:${port}`, path.join(root, 'examples/echo-server.wasm')]);
const id = await a.id;
let c = await connect(port);
await c.ask('hello');
await c.ask('how are you');

say('starting an empty VM (cstrap) for the server to move into');
const dst = spawn(process.execPath, [roamBin, 'cstrap', '--listen', '127.0.0.1:0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
dst.stdout.on('data', (d) => process.stdout.write(`  [vm stdout, new home] ${d}`));
const to = await new Promise<string>((res, rej) => {
  let err = '';
  dst.stderr.on('data', (d) => {
    err += d;
    for (const line of String(d).split('\n').filter(Boolean)) process.stdout.write(`  [cstrap] ${line}\n`);
    const m = /cstrap listening on (\S+)/.exec(err);
    if (m) res(m[1]);
  });
  dst.on('exit', () => rej(new Error(`cstrap exited: ${err}`)));
});

say(`migrating VM ${id} live to ${to} while the client keeps talking to it`);
let n = 0;
let moving = true;
const talking = (async () => {
  while (moving) {
    try {
      await c.ask(`during migration ${n++}`);
    } catch {
      say('the connection to the old host was cut; reconnecting (the new host re-opens the listener)');
      c = await connect(port);
    }
  }
})();
const result = await run(['migrate', id, '--to', to]);
await a.exited;
moving = false;
await talking;
console.log(`  ${result.trim()}`);
await c.ask('on the new host');

say('checkpointing the migrated VM to disk, live, and inspecting the file');
console.log(`  ${(await run(['checkpoint', id, '-o', file])).trim()}`);
await run(['inspect', file]).then((t) => console.log(t.replace(/^/gm, '  ')));
await c.ask('quit');
await new Promise((r) => dst.on('exit', r));
fs.rmSync(dir, { recursive: true, force: true });
say('done. Try it yourself: node bin/roam.js --help');
