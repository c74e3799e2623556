// Checkpoints a large guest (bigmem MIB, sleeping between passes) to disk in both
// formats, then times restoring each in a fresh process. Prints one JSON line.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PageCleaner } from '../src/checkpoint/cleaner.js';
import { defaultKeyPath, fileTarget, loadOrCreateKey } from '../src/format/index.js';
import { bootVm } from '../src/vm/create.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const mib = Number(process.argv[2] ?? 256);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roam-big-'));
const key = await loadOrCreateKey(defaultKeyPath());
let out = '';
const kernel = await bootVm(
  path.resolve(here, '../../examples/bigmem.wasm'),
  [String(mib), '1000', '10000'],
  {
    stdout: (b) => (out += Buffer.from(b).toString()),
    onExit: () => {},
  },
);
kernel.start();
while (!out.includes('iter 0')) await new Promise((r) => setTimeout(r, 20));

const rows: Array<Record<string, string | number>> = [];
for (const format of ['stream', 'image'] as const) {
  const file = path.join(dir, `big.${format}`);
  const t0 = performance.now();
  const res = await new PageCleaner(kernel, fileTarget(file, { format, key })).run();
  const ckptMs = performance.now() - t0;
  const st = fs.statSync(file);
  const restore = JSON.parse(
    execFileSync(process.execPath, [path.join(here, 'restore-timer.js'), file], {
      encoding: 'utf8',
    }).trim(),
  );
  rows.push({
    format,
    'size MiB': st.size / 1048576,
    'on disk MiB': (st.blocks * 512) / 1048576,
    'checkpoint ms': ckptMs,
    rounds: res.rounds.length,
    'freeze ms': res.downtimeMs,
    'restore ms': restore.ms,
    'read+verify ms': restore.readMs,
  });
  fs.rmSync(file);
}
kernel.close();
fs.rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ mib, rows }));
process.exit(0);
