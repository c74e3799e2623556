// `npm test`: unit tests (no processes of their own) in parallel, then the
// end-to-end tests one file at a time. Everything runs with one temporary
// folder of its own as TMPDIR, removed afterwards, and any process a test
// started and left behind (found by a marker in its environment) is killed,
// so a failing run leaves nothing behind.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST_TEST = path.dirname(fileURLToPath(import.meta.url));
const runId = `${process.pid}-${Date.now()}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'roam-test-run-'));
const env = {
  ...process.env,
  TMPDIR: tmp,
  ROAM_TEST_RUN: runId,
  ROAM_TEST_HOME: path.join(tmp, 'home'),
};

// Prepared modules are a build product keyed by content and PREPARE_VERSION: kept
// across runs in ~/.cache/roam-test (ROAM_TEST_CACHE=DIR to move it, =off for a
// cold run), since preparing the WASI suite's Rust modules from nothing takes many minutes.
const cache = process.env.ROAM_TEST_CACHE ?? path.join(os.homedir(), '.cache', 'roam-test');
if (cache !== 'off') {
  fs.mkdirSync(path.join(cache, 'cache'), { recursive: true });
  fs.mkdirSync(env.ROAM_TEST_HOME, { recursive: true });
  fs.symlinkSync(path.join(cache, 'cache'), path.join(env.ROAM_TEST_HOME, 'cache'));
}

const only = process.argv.slice(2);
const files = (dir: string): string[] =>
  fs
    .readdirSync(path.join(DIST_TEST, dir))
    .filter((f) => f.endsWith('.test.js'))
    .map((f) => path.join(DIST_TEST, dir, f))
    .filter((f) => only.length === 0 || only.some((o) => f.includes(o)));

function run(dir: string, concurrency: number): number {
  const list = files(dir);
  if (list.length === 0) return 0;
  process.stdout.write(`\n# ${dir}: ${list.length} files, ${concurrency} at a time\n`);
  const r = spawnSync(
    process.execPath,
    [
      '--test',
      '--test-force-exit',
      `--test-concurrency=${concurrency}`,
      '--test-timeout=600000',
      ...list,
    ],
    { env, stdio: 'inherit' },
  );
  return r.status ?? 1;
}

/** Processes of this run still alive: their environment carries the run's marker. */
function leftovers(): number[] {
  const pids: number[] = [];
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (fs.readFileSync(`/proc/${p}/environ`, 'latin1').includes(`ROAM_TEST_RUN=${runId}`))
        pids.push(Number(p));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

let status = 0;
try {
  status = run('unit', 2) || status;
  status = run('e2e', 1) || status;
} finally {
  const left = leftovers();
  if (left.length)
    process.stdout.write(
      `# killing ${left.length} process(es) the tests left running: ${left.join(' ')}\n`,
    );
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(status);
