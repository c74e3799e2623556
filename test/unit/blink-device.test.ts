// /dev/blink in the guest kernel: records in (a bad write refused whole, with
// EINVAL), the state saved and restored with the kernel's, a viewer's poll answered
// with what it is missing, input events queued for the program.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assemble } from '../../src/blink/asm.js';
import { ObjType } from '../../src/blink/ops.js';
import { objectRecord, procData, regsRecord } from '../../src/blink/wire.js';
import { BlinkDevice, INPUT_BYTES } from '../../src/guest/blink-device.js';
import { Errno, WasiError } from '../../src/guest/errno.js';

const proc = (version: number) =>
  objectRecord({
    id: 3,
    type: ObjType.PROC,
    version,
    data: procData('redraw', assemble('clear color')),
  });
const quiet = () => {};

void test('a write is all records or none; a bad one is EINVAL', () => {
  const d = new BlinkDevice(quiet);
  const bad = new Uint8Array([...proc(1), 9, 0, 0, 0, 0]);
  assert.throws(
    () => d.write(bad, quiet),
    (e: unknown) => e instanceof WasiError && e.errno === Errno.INVAL,
  );
  assert.equal(d.state.objects.length, 0);
  d.write(new Uint8Array([...proc(1), ...regsRecord(0, [1, 2])]), quiet);
  assert.equal(d.seq, 2);
  assert.deepEqual(d.state.regs.slice(0, 3), [1, 2, 0]);
});

void test('the display state survives save and restore (a checkpoint), under a new epoch', async () => {
  const d = new BlinkDevice(quiet);
  d.write(new Uint8Array([...proc(1), ...regsRecord(4, [7])]), quiet);
  const saved = JSON.parse(JSON.stringify(d.toJSON())) as ReturnType<BlinkDevice['toJSON']>;
  const r = BlinkDevice.restore(saved, quiet);
  assert.notEqual(r.epoch, d.epoch);
  assert.deepEqual(Array.from(r.state.objects[0].data), Array.from(d.state.objects[0].data));
  assert.equal(r.state.regs[4], 7);
  // A viewer that knew the old VM gets the whole state from the restored one.
  const c = await r.changes(d.epoch, d.seq, 0);
  assert.equal(c.messages[0].t, 'state');
});

void test('a poll gets only what it missed, and waits for a change', async () => {
  const d = new BlinkDevice(quiet);
  d.write(proc(1), quiet);
  const first = await d.changes(undefined, undefined, 0);
  assert.equal(first.messages[0].t, 'state');
  const waiting = d.changes(first.epoch, first.seq, 5000);
  d.write(regsRecord(1, [5]), quiet);
  const next = await waiting;
  assert.deepEqual(next.messages, [{ t: 'regs', first: 1, values: [5] }]);
});

void test('input events are queued for the program (oldest dropped past the limit)', () => {
  let woken = 0;
  const d = new BlinkDevice(() => woken++);
  assert.equal(d.read(new Uint8Array(64)), null, 'no input: the read blocks');
  for (let i = 0; i < 300; i++) d.pushInput({ kind: 2, x: i, y: 1 });
  const buf = new Uint8Array(INPUT_BYTES * 2);
  assert.equal(d.read(buf), INPUT_BYTES * 2);
  const v = new DataView(buf.buffer);
  assert.equal(v.getUint32(0, true), 2);
  assert.equal(v.getFloat32(4, true), 44, 'the first 44 were dropped');
  assert.equal(woken, 300);
  assert.throws(() => d.read(new Uint8Array(4)), /room for one event/);
});
