// Runs one guest once and prints how long its execution took, as JSON. Used by
// bench/overhead in a fresh process per measurement:
//   v8        the original module under node:wasi (plain V8, no instrumentation)
//   roam      the prepared module in the roam kernel, no checkpoint under way
//   roam-ckpt the same while the page cleaner checkpoints it continuously to a file
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WASI } from 'node:wasi';
import { PageCleaner } from '../src/checkpoint/cleaner.js';
import { fileTarget } from '../src/format/index.js';
import { bootVm } from '../src/guest/vm.js';

const [mode, program, ...args] = process.argv.slice(2);
const sink = () => {};

if (mode === 'v8') {
  const wasi = new WASI({ version: 'preview1', args: [program, ...args], preopens: { '/': os.tmpdir() }, stdout: fs.openSync('/dev/null', 'w') });
  const mod = await WebAssembly.compile(fs.readFileSync(program));
  const inst = await WebAssembly.instantiate(mod, wasi.getImportObject() as WebAssembly.Imports);
  const t0 = performance.now();
  wasi.start(inst);
  console.log(JSON.stringify({ ms: performance.now() - t0 }));
} else {
  const kernel = await bootVm(program, args, { stdout: sink, onExit: () => {} });
  let checkpoints = 0;
  let done = false;
  const t0 = performance.now();
  const finished = new Promise<void>((r) => (kernel.opts.onExit = () => { done = true; r(); }));
  kernel.start();
  if (mode === 'roam-ckpt') {
    const file = path.join(os.tmpdir(), `roam-bench-${process.pid}.ckpt`);
    void (async () => {
      while (!done) {
        await new PageCleaner(kernel, fileTarget(file, { format: 'image' })).run().catch(() => {});
        checkpoints++;
      }
      fs.rmSync(file, { force: true });
    })();
  }
  await finished;
  console.log(JSON.stringify({ ms: performance.now() - t0, checkpoints }));
  kernel.close();
  process.exit(0);
}
