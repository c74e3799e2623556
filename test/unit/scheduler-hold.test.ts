// While the page cleaner holds the CPU and waits on its target, programs still get
// short slices, at most a third of the time; held strictly (after a migration's
// freeze) they get none. The grace timer once re-armed itself forever, so a held
// scheduler never ran a slice during a drain and a server's clients saw silences of
// hundreds of milliseconds. (A unit test of the scheduler: the "process" is a stand-in
// whose slice busy-waits for a given time.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Scheduler } from '../../src/guest/scheduler.js';
import type { Process } from '../../src/guest/process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function program(sliceMs: number) {
  const slices: number[] = [];
  const p = {
    pid: 1,
    status: 'runnable',
    runSlice() {
      slices.push(performance.now());
      const end = performance.now() + sliceMs;
      while (performance.now() < end) {
        /* a slice of work */
      }
    },
  };
  const s = new Scheduler(
    () => [p as unknown as Process],
    (_p, err) => {
      throw err;
    },
    () => {},
  );
  return { s, slices };
}

test('held, a program runs while the cleaner waits; held strictly, it does not', async (t) => {
  const { s, slices } = program(0.2);
  t.after(() => s.hold(true)); // stop it, whatever happens
  s.hold();
  s.kick();
  await sleep(100); // the cleaner "waits on its target" the whole time
  assert.ok(slices.length >= 10, `slices ran during the wait (${slices.length})`);
  s.hold(true);
  await sleep(5); // whatever was already scheduled has run
  const n = slices.length;
  s.kick();
  await sleep(50);
  assert.equal(slices.length, n, 'no slice while strictly held');
  s.release();
  await sleep(20);
  assert.ok(slices.length > n, 'released: it runs again');
});

test('held, a program that uses its whole slice gets at most about a third of the time', async (t) => {
  const { s, slices } = program(3);
  t.after(() => s.hold(true));
  s.hold();
  s.kick();
  const t0 = performance.now();
  await sleep(300);
  const busy = slices.length * 3;
  s.hold(true);
  assert.ok(slices.length > 0, 'it ran');
  assert.ok(
    busy / (performance.now() - t0) < 0.45,
    `its share: ${(busy / (performance.now() - t0)).toFixed(2)}`,
  );
});
