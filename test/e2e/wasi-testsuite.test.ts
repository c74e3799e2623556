// WASI preview1 conformance: every test of the WebAssembly WASI test suite
// (../shared/wasi-testsuite, prebuilt third-party binaries beside the clone) run
// through the real `roam run` by the suite's own rules: its `root` folder copied
// afresh and preopened at /, its args and env, stdin an empty pipe; the exit code
// must equal `exit_code` and stdout/stderr must start with the expected text.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT, roam, tmpdir } from '../helpers.js';

const SUITE = path.resolve(ROOT, '..', 'shared', 'wasi-testsuite');
const GROUPS = ['c', 'rust', 'assemblyscript'];

interface Spec {
  args?: string[];
  env?: Record<string, string>;
  root?: string;
  exit_code?: number;
  stdout?: string;
  stderr?: string;
}

function cases(): Array<{ name: string; wasm: string; spec: Spec; dir: string }> {
  return GROUPS.flatMap((g) => {
    const dir = path.join(SUITE, g);
    if (!fs.existsSync(dir)) return [];
    return fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.wasm'))
      .sort()
      .map((f) => {
        const json = path.join(dir, f.replace(/\.wasm$/, '.json'));
        const spec = fs.existsSync(json) ? (JSON.parse(fs.readFileSync(json, 'utf8')) as Spec) : {};
        return { name: `${g}/${f.replace(/\.wasm$/, '')}`, wasm: path.join(dir, f), spec, dir };
      });
  });
}

/** The `roam run` arguments for one suite test, by the suite's rules. */
function runArgs(c: ReturnType<typeof cases>[number]): string[] {
  const args = ['run', '--quiet'];
  if (c.spec.root) {
    const scratch = tmpdir('wasi-root');
    fs.cpSync(path.join(c.dir, c.spec.root), scratch, { recursive: true });
    args.push('--dir', `${scratch}::/`);
  }
  for (const [k, v] of Object.entries(c.spec.env ?? {})) args.push('--env', `${k}=${v}`);
  return [...args, c.wasm, ...(c.spec.args ?? [])];
}

const all = cases();

void test(
  'the WASI test suite, by its own rules',
  {
    skip: all.length === 0 && `no suite at ${SUITE} (CI puts shared/ beside the clone)`,
    // Two at a time: a cold run spends most of its time preparing the modules
    // (46 of them are 2 MB Rust programs), hence the long timeout.
    concurrency: 2,
    timeout: 3 * 3600_000,
  },
  async (t) => {
    let passed = 0;
    await Promise.all(
      all.map((c) =>
        t.test(c.name, { timeout: 900_000 }, async () => {
          const r = await roam(runArgs(c), { input: '' });
          assert.equal(r.code, c.spec.exit_code ?? 0, `exit code\n${r.stdout}\n${r.stderr}`);
          assert.ok(r.stdout.startsWith(c.spec.stdout ?? ''), `stdout: ${r.stdout}`);
          // roam's own notes (the first preparation of a module) come before the program's.
          const stderr = r.stderr.replace(/^roam: preparing .*\n/gm, '');
          assert.ok(stderr.startsWith(c.spec.stderr ?? ''), `stderr: ${r.stderr}`);
          passed++;
        }),
      ),
    );
    t.diagnostic(`passed ${passed}/${all.length}`);
    process.stdout.write(`# wasi-testsuite: passed ${passed}/${all.length}\n`);
  },
);
