// The page cleaner's options: one given as undefined keeps its default. (A
// migration home ordered passed maxRounds: undefined; the cleaner then never ran
// out of rounds and never throttled, so a VM whose working set did not fit at
// once aborted instead of converging.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PageCleaner } from '../../src/checkpoint/cleaner.js';
import type { Kernel } from '../../src/guest/kernel.js';
import type { CheckpointTarget } from '../../src/format/index.js';

test('options given as undefined keep their defaults', () => {
  const kernel = { scheduler: {} } as unknown as Kernel; // only what the constructor reads
  const c = new PageCleaner(kernel, {} as CheckpointTarget, {
    maxRounds: undefined,
    throttle: true,
    bufferStart: undefined,
  });
  const o = (c as unknown as { o: { maxRounds: number; bufferStart: number; throttle: boolean } })
    .o;
  assert.equal(o.maxRounds, 30);
  assert.equal(o.bufferStart, 64);
  assert.equal(o.throttle, true);
});
