// Runs one guest once and prints how long its execution took, as JSON. Used by
// bench/overhead in a fresh process per measurement:
//   v8        the original module under node:wasi (plain V8, no instrumentation)
//   roam      the prepared module in the roam kernel, no checkpoint under way
//   roam-tracked the same in the tracked variant (write barrier on), with no cleaner:
//             what a checkpoint costs the program apart from the cleaner's own work
//   roam-ckpt the same while the page cleaner checkpoints it continuously to a file
// Besides the time it prints the guest's exit code and a hash of its stdout, and
// the first failed checkpoint, so bench/overhead can refuse a run that did not do
// the same work (a crashed guest is fast).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WASI } from 'node:wasi';
import { PageCleaner } from '../src/checkpoint/cleaner.js';
import { fileTarget } from '../src/format/index.js';
import { bootVm } from '../src/vm/create.js';

const [mode, program, ...args] = process.argv.slice(2);
const hash = createHash('sha256');
let stderr = '';

if (mode === 'v8') {
  const out = path.join(os.tmpdir(), `roam-bench-${process.pid}.out`);
  const fd = fs.openSync(out, 'w+');
  const wasi = new WASI({
    version: 'preview1',
    args: [program, ...args],
    preopens: { '/': os.tmpdir() },
    stdout: fd,
  });
  const mod = await WebAssembly.compile(fs.readFileSync(program));
  const inst = await WebAssembly.instantiate(mod, wasi.getImportObject() as WebAssembly.Imports);
  const t0 = performance.now();
  const code = wasi.start(inst);
  const ms = performance.now() - t0;
  fs.closeSync(fd);
  const stdout = hash.update(fs.readFileSync(out)).digest('hex');
  fs.rmSync(out);
  console.log(JSON.stringify({ ms, code, stdout }));
} else {
  let code = -1;
  const kernel = await bootVm(program, args, {
    stdout: (b) => void hash.update(b),
    stderr: (b) => void (stderr += Buffer.from(b).toString()),
    log: (m) => void (stderr += `roam: ${m}\n`),
  });
  let checkpoints = 0;
  let failed: string | undefined;
  let done = false;
  const t0 = performance.now();
  const finished = new Promise<void>(
    (r) =>
      (kernel.opts.onExit = (c) => {
        code = c;
        done = true;
        r();
      }),
  );
  if (mode === 'roam-tracked') for (const p of kernel.processes.values()) p.switchTo('tracked');
  kernel.start();
  let cleaning: Promise<void> = Promise.resolve();
  if (mode === 'roam-ckpt') {
    const file = path.join(os.tmpdir(), `roam-bench-${process.pid}.ckpt`);
    cleaning = (async () => {
      while (!done && failed === undefined) {
        await new PageCleaner(kernel, fileTarget(file, { format: 'image' })).run().then(
          () => void checkpoints++,
          (err: Error) => void (failed = err.message),
        );
      }
      fs.rmSync(file, { force: true });
    })();
  }
  await finished;
  const ms = performance.now() - t0;
  await cleaning;
  console.log(
    JSON.stringify({
      ms,
      code,
      stdout: hash.digest('hex'),
      checkpoints,
      failed,
      stderr: stderr.slice(-2000),
    }),
  );
  kernel.close();
  process.exit(0);
}
