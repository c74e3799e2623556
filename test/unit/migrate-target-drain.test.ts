// The migration target's drain(): a SYNC whose send fails must not leave the
// wait for SYNCED without a handler. When the cleaner then aborts (rejecting that
// wait), the process must not see an unhandled rejection, which ends a VM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { channelTarget } from '../../src/migrate/target.js';
import type { Channel } from '../../src/migrate/channel.js';

test('drain: a failed SYNC send rejects drain and leaves no unhandled rejection on abort', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => void unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    // A unit-test double of the one Channel method drain() uses: the link is gone.
    const broken = { send: () => Promise.reject(new Error('link down')) } as unknown as Channel;
    const target = channelTarget(broken);
    await assert.rejects(target.drain!(), /link down/);
    await target.abort(new Error('link down'));
    // Give a stray rejection time to surface.
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
