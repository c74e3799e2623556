// Shared by the end-to-end tests: they drive the real `roam` CLI as separate OS
// processes, exactly as a user would.
import { spawn, type ChildProcess } from 'node:child_process';
import { after } from 'node:test';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ROAM = path.join(ROOT, 'bin/roam.js');
export const example = (name: string) => path.join(ROOT, 'examples', `${name}.wasm`);

/** One ROAM_HOME for the whole run, so prepared modules are cached once. */
export const HOME = process.env.ROAM_TEST_HOME ?? path.join(os.tmpdir(), 'roam-test-home');
fs.mkdirSync(HOME, { recursive: true });

/** Folders and processes this test file made: removed and killed when it exits, pass or fail. */
const made: string[] = [];
const children = new Set<ChildProcess>();
function cleanUp(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of made) {
    // A VM its daemon started may still be writing there as it goes: retry, and leave
    // what is left to the runner (it removes the whole run's TMPDIR).
    try {
      fs.rmSync(d, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    } catch {
      /* the runner's TMPDIR removal takes it */
    }
  }
}
process.on('exit', cleanUp);
// A test that failed before stopping what it started must not keep its file running:
// when the file's tests are done, what is left is killed (the 'exit' hook alone never
// fires while a child's pipes keep the event loop alive).
after(cleanUp);
for (const sig of ['SIGTERM', 'SIGINT'] as const)
  process.once(sig, () => {
    cleanUp();
    process.exit(128 + (sig === 'SIGTERM' ? 15 : 2));
  });

export const tmpdir = (tag: string): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `roam-${tag}-`));
  made.push(d);
  return d;
};

/** Kill `proc` when this test file ends, if it has not exited by then. */
export const track = (proc: ChildProcess): ChildProcess => {
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
};

export interface Running {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code. */
  exited: Promise<number>;
  /** Resolves with the VM id once the VM has printed it. */
  vmId: Promise<string>;
}

export function start(
  args: string[],
  opts: { env?: Record<string, string>; input?: string } = {},
): Running {
  const proc = spawn(process.execPath, [ROAM, ...args], {
    env: { ...process.env, ROAM_HOME: HOME, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  track(proc);
  let out = '',
    err = '';
  proc.stdout.on('data', (d) => (out += d));
  let gotId: (id: string) => void, noId: (e: Error) => void;
  const vmId = new Promise<string>((res, rej) => {
    gotId = res;
    noId = rej;
  });
  proc.stderr.on('data', (d) => {
    err += d;
    const m = /roam: vm ([0-9a-f]+) (running|restored|arrived)/.exec(err);
    if (m) gotId(m[1]);
  });
  if (opts.input !== undefined) proc.stdin.end(opts.input);
  else proc.stdin.end();
  const exited = new Promise<number>((res) =>
    proc.on('close', (code, sig) => {
      noId(new Error(`roam exited (${code ?? sig}) before printing a VM id: ${err}`));
      res(code ?? 128);
    }),
  );
  return { proc, stdout: () => out, stderr: () => err, exited, vmId };
}

export async function roam(
  args: string[],
  opts: { env?: Record<string, string>; input?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = start(args, opts);
  r.vmId.catch(() => {});
  const code = await r.exited;
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until `pred` holds, polling. */
export async function until(pred: () => boolean, what: string, ms = 60000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A deterministic pseudo-random sequence, so a failing run can be repeated. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => (s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0) / 2 ** 32;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}
