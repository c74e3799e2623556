// A program that exits while its VM is being checkpointed is not in the checkpoint:
// the file verifies (in both formats), holds no page of it, and resumes the programs
// that were still running at the freeze. (An image of such a VM used to fail VERIFY:
// its pages were sent in round 0 and stayed in VERIFY after SPACES dropped it.)
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { PageCleaner } from '../../src/checkpoint/cleaner.js';
import {
  defaultKeyPath,
  fileTarget,
  loadOrCreateKey,
  readCheckpoint,
  type CheckpointTarget,
} from '../../src/format/index.js';
import { bootVm } from '../../src/vm/create.js';
import { HOME, example, roam, tmpdir, until } from '../helpers.js';

process.env.ROAM_HOME = HOME;

for (const format of ['image', 'stream'] as const) {
  test(`a program that exits during a checkpoint is left out of it, and the checkpoint verifies (${format})`, async () => {
    const key = await loadOrCreateKey(defaultKeyPath({ ROAM_HOME: HOME }));
    let stdout = '';
    let exit!: (code: number) => void;
    const exited = new Promise<number>((r) => (exit = r));
    const kernel = await bootVm(example('counter'), ['100', '20'], {
      also: [{ program: example('bigmem'), args: ['2', '2'] }],
      stdout: (b) => void (stdout += Buffer.from(b).toString()),
      stderr: () => {},
      log: () => {},
      onExit: (code) => exit(code),
    });
    const short = [...kernel.processes.values()].find((p) => p.argv[0] === example('bigmem'))!;
    const file = path.join(tmpdir('ckexit'), `vm.${format}`);
    const inner = fileTarget(file, { format, key });
    let first = true;
    // Round 0 sees both programs (neither has started); the programs start only once
    // its first pages are handed over, and the round waits until bigmem has exited.
    const target: CheckpointTarget = {
      begin: (h, m) => inner.begin(h, m),
      async pages(batch) {
        await inner.pages(batch);
        if (!first) return;
        first = false;
        kernel.start();
        await until(() => short.status === 'exited', 'bigmem to exit during the checkpoint');
      },
      finish: (s, k, v) => inner.finish(s, k, v),
      abort: (e) => inner.abort(e),
      get bytesWritten() {
        return inner.bytesWritten;
      },
      // How VERIFY counts pages is the file's (an image counts them by presence).
      presenceVerify: inner.presenceVerify,
    };
    const res = await new PageCleaner(kernel, target, { verifyAtFreeze: true }).run();
    assert.ok(res.pagesSent > 0);
    assert.equal(await exited, 0);
    assert.match(stdout, /done checksum/, 'bigmem ran to its end during the checkpoint');

    const cp = await readCheckpoint(file, { key });
    assert.equal(
      cp.spaces.has(short.slot),
      false,
      'no page of the exited program is in the checkpoint',
    );
    const at = JSON.parse(cp.kernel.toString()).stdoutBytes as number;
    const restored = await roam(['restore', '--quiet', file]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal(
      restored.stdout,
      Buffer.from(stdout).subarray(at).toString(),
      'the restored VM carries on where the freeze left it',
    );
    assert.match(restored.stdout, /sum /);
  });
}
