// Times restoring a checkpoint file in this fresh process: read and verify it,
// rebuild the kernel, instantiate the programs and load their memory (an image's
// pages straight into the programs' memories, see restoreFile).
import { restoreFile } from '../src/checkpoint/restore-file.js';
import { defaultKeyPath, loadKey } from '../src/format/index.js';

const file = process.argv[2];
const key = await loadKey(defaultKeyPath());
const t0 = performance.now();
const { kernel, readMs } = await restoreFile(
  file,
  { key },
  { vmId: 'bench', stdout: () => {}, onExit: () => {} },
);
const t2 = performance.now();
kernel.close();
console.log(JSON.stringify({ ms: t2 - t0, readMs }));
process.exit(0);
