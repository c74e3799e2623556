// Times restoring a checkpoint file in this fresh process: read and verify it,
// rebuild the kernel, instantiate the programs and load their memory.
import { restoreVm } from '../src/checkpoint/restore.js';
import { defaultKeyPath, loadKey, readCheckpoint } from '../src/format/index.js';

const file = process.argv[2];
const key = await loadKey(defaultKeyPath());
const t0 = performance.now();
const cp = await readCheckpoint(file, { key });
const t1 = performance.now();
const kernel = await restoreVm(cp, { vmId: 'bench', stdout: () => {}, onExit: () => {} });
const t2 = performance.now();
kernel.close();
console.log(JSON.stringify({ ms: t2 - t0, readMs: t1 - t0 }));
process.exit(0);
