// Progress on stderr: redrawn in place on a terminal, only the lasting lines elsewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eta, Progress } from '../../src/cli/progress.js';

const stream = (isTTY: boolean) => {
  const chunks: string[] = [];
  const s = { isTTY, write: (c: string) => chunks.push(c) > 0 } as unknown as NodeJS.WriteStream;
  return { s, text: () => chunks.join('') };
};
const tick = { event: 'progress' as const, round: 0, sent: 1200, bytes: 4915200, ms: 500 };

test('on a terminal a round is redrawn in place, then replaced by its lasting line', () => {
  const { s, text } = stream(true);
  const p = new Progress(s);
  p.tick(tick);
  p.tick({ ...tick, sent: 2400, bytes: 9830400, ms: 1000 });
  p.line('round 0: sent 2400 pages');
  assert.equal(
    text(),
    '\r\x1b[Kround 0: 1200 pages, 4.7 MiB, 9 MiB/s, 2400 pages/s, 0.5 s' +
      '\r\x1b[Kround 0: 2400 pages, 9.4 MiB, 9 MiB/s, 2400 pages/s, 1.0 s' +
      '\r\x1b[Kround 0: sent 2400 pages\n',
  );
});

test('into a pipe or a log only the lasting lines appear', () => {
  const { s, text } = stream(false);
  const p = new Progress(s);
  p.tick(tick);
  p.line('round 0: sent 2400 pages');
  assert.equal(text(), 'round 0: sent 2400 pages\n');
});

test('the live line shows the last WSS and an ETA from the pages the round has still to look at', () => {
  const { s, text } = stream(true);
  const p = new Progress(s);
  p.wss = 310;
  // A quarter of the round's 8000 pages looked at in 2 s: 6 s to go.
  p.tick({ ...tick, round: 1, ms: 2000, seen: 2000, of: 8000 });
  assert.equal(
    text(),
    '\r\x1b[Kround 1: 1200 pages, 4.7 MiB, 2 MiB/s, 600 pages/s, WSS 310, 2.0 s, ETA 6 s',
  );
  assert.equal(eta(125), '2 min 5 s');
});

test('while a module is prepared, a terminal sees the time so far and the ETA, until prepared()', async () => {
  const { s, text } = stream(true);
  const p = new Progress(s);
  let t = 0;
  p.preparing(10_000, () => t);
  t = 3000;
  await new Promise((r) => setTimeout(r, 600));
  p.line('roam:   Asyncify over 10 of 31 functions');
  p.prepared();
  const shown = text();
  assert.ok(shown.includes('\r\x1b[Kroam: preparing: 3 s, ETA 7 s'), shown);
  assert.ok(shown.endsWith('\r\x1b[Kroam:   Asyncify over 10 of 31 functions\n'));
  const after = text().length;
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(text().length, after, 'nothing is redrawn after prepared()');
});

test('into a pipe a preparation shows only its lines', async () => {
  const { s, text } = stream(false);
  const p = new Progress(s);
  p.preparing(1000);
  await new Promise((r) => setTimeout(r, 600));
  p.prepared();
  assert.equal(text(), '');
});
