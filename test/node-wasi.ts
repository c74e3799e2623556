// Runs a WASI program under Node's own WASI (node:wasi), the independent
// implementation the real-program tests and bench/real compare roam with.
//
//   node dist/test/node-wasi.js [--dir HOST] PROGRAM.wasm [ARGS...]
//
// HOST (default: the current folder) is the guest's "/". Prints, on stderr,
// `node-wasi: compile+run MS` so that a bench can read the time the program took.
import fs from 'node:fs';
import { WASI } from 'node:wasi';

const argv = process.argv.slice(2);
let root = process.cwd();
if (argv[0] === '--dir') {
  root = argv[1];
  argv.splice(0, 2);
}
const [program, ...args] = argv;
if (!program) {
  process.stderr.write('usage: node-wasi [--dir HOST] PROGRAM.wasm [ARGS...]\n');
  process.exit(2);
}
const wasi = new WASI({
  version: 'preview1',
  args: [program, ...args],
  env: {},
  preopens: { '/': root },
});
const t0 = performance.now();
const mod = await WebAssembly.compile(fs.readFileSync(program));
const instance = await WebAssembly.instantiate(mod, { wasi_snapshot_preview1: wasi.wasiImport });
const code = wasi.start(instance);
process.stderr.write(`node-wasi: compile+run ${(performance.now() - t0).toFixed(1)}\n`);
process.exitCode = code;
