// The Blink viewer in a real headless Chromium (WebGL2 on SwiftShader): it draws
// the gears guest's display (pixels checked in screenshots), keeps drawing while
// the guest migrates live to a cstrap and rebuilds its display from the arrived
// VM's state, and refuses procedures that loop or draw outside their window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import type { Page } from 'playwright-core';
import { assemble } from '../../src/blink/asm.js';
import { ObjType } from '../../src/blink/ops.js';
import { objectRecord, procData } from '../../src/blink/wire.js';
import type { ViewerStatus } from '../../src/blink/viewer-page.js';
import { launch, noBrowser } from '../browser.js';
import { example, roam, start, tmpdir, until, type Running } from '../helpers.js';
import { cstrap } from '../migrate-fixtures.js';

const skip = noBrowser() ?? false;

async function viewer(args: string[]): Promise<{ r: Running; url: string }> {
  const r = start(['view', ...args, '--json']);
  r.vmId.catch(() => {});
  let url = '';
  await until(() => {
    const m = /"url":"([^"]+)"/.exec(r.stdout());
    if (m) url = m[1];
    return url !== '' || r.proc.exitCode !== null;
  }, 'roam view to print its URL');
  assert.ok(url, `roam view failed: ${r.stderr()}`);
  return { r, url };
}

const framesOver = (page: Page, n: number) =>
  page.waitForFunction(
    (k) =>
      ((window as unknown as { blink?: { status: ViewerStatus } }).blink?.status.frames ?? 0) > k,
    n,
  );

const status = (page: Page) =>
  page.evaluate(() => (window as unknown as { blink: { status: ViewerStatus } }).blink.status);

/** Pixels of the canvas by the colour that dominates them. */
async function colours(
  page: Page,
): Promise<{ red: number; green: number; blue: number; png: PNG }> {
  const png = PNG.sync.read(await page.locator('canvas').screenshot());
  const n = { red: 0, green: 0, blue: 0 };
  for (let i = 0; i < png.data.length; i += 4) {
    const [r, g, b] = [png.data[i], png.data[i + 1], png.data[i + 2]];
    if (r > 100 && g < 60 && b < 60) n.red++;
    else if (g > 100 && r < 60 && b < 90) n.green++;
    else if (b > 120 && r < 90 && g < 90) n.blue++;
  }
  return { ...n, png };
}

const differing = (a: PNG, b: PNG): number => {
  let d = 0;
  for (let i = 0; i < a.data.length; i += 4)
    if (a.data[i] !== b.data[i] || a.data[i + 1] !== b.data[i + 1]) d++;
  return d;
};

async function gearsVm(): Promise<{ vm: Running; id: string }> {
  const vm = start(['run', example('gears')]);
  const id = await vm.vmId;
  await until(() => vm.stdout().includes('vertices uploaded'), 'gears to upload its display');
  return { vm, id };
}

void test('the viewer draws the gears from the VM, moving', { skip }, async () => {
  const { vm, id } = await gearsVm();
  const v = await viewer([id]);
  const b = await launch();
  try {
    const page = await b.context.newPage();
    await page.goto(v.url);
    await framesOver(page, 10);
    const one = await colours(page);
    await page.waitForTimeout(300);
    const two = await colours(page);
    for (const c of ['red', 'green', 'blue'] as const)
      assert.ok(one[c] > 1000, `the ${c} gear is drawn (${one[c]} pixels)`);
    assert.ok(differing(one.png, two.png) > 500, 'the gears turn between two screenshots');
    assert.deepEqual((await status(page)).refusals, []);
  } finally {
    await b.close();
    v.r.proc.kill();
    vm.proc.kill();
  }
});

void test(
  'the viewer keeps drawing through a live migration and rebuilds from the arrived VM',
  { skip },
  async () => {
    const { vm, id } = await gearsVm();
    const dst = await cstrap();
    const v = await viewer([id]);
    const b = await launch();
    try {
      const page = await b.context.newPage();
      await page.goto(v.url);
      await framesOver(page, 10);
      const before = await status(page);
      const m = await roam(['migrate', id, '--to', dst.addr, '--json']);
      assert.equal(m.code, 0, m.stderr);
      assert.equal(await vm.exited, 0, 'the source ends once the destination confirmed');
      await page.waitForFunction(
        (e) => (window as unknown as { blink: { status: ViewerStatus } }).blink.status.epoch !== e,
        before.epoch,
        { timeout: 30_000 },
      );
      const framesAt = (await status(page)).frames;
      await page.waitForTimeout(500);
      const after = await status(page);
      assert.ok(after.loads >= 2, 'the display was rebuilt from the arrived VM');
      assert.ok(after.frames > framesAt + 5, 'frames go on after the move');
      const c = await colours(page);
      for (const k of ['red', 'green', 'blue'] as const)
        assert.ok(c[k] > 1000, `${k} gear after the move`);
    } finally {
      await b.close();
      v.r.proc.kill();
      dst.proc.kill();
      vm.proc.kill();
    }
  },
);

void test(
  'the viewer refuses a procedure that loops or draws outside its window, and keeps the last good one',
  { skip },
  async () => {
    const dir = tmpdir('blink-refuse');
    const log = path.join(dir, 'blink.rec');
    const redraw = (version: number, text: string) =>
      objectRecord({
        id: 3,
        type: ObjType.PROC,
        version,
        data: procData('redraw', assemble(text)),
      });
    fs.writeFileSync(log, redraw(1, 'clear_color 0 1 0 1; clear color'));
    const v = await viewer(['--log', log]);
    const b = await launch();
    try {
      const page = await b.context.newPage();
      await page.goto(v.url);
      await framesOver(page, 3);
      assert.ok((await colours(page)).green > 200_000, 'v1 paints the window green');
      fs.appendFileSync(log, redraw(2, 'clear_color 1 0 0 1; clear color; add r0 r0 1; jmp -3'));
      fs.appendFileSync(
        log,
        redraw(3, 'clear_color 1 0 0 1; viewport -100 -100 4000 4000; clear color'),
      );
      await page.waitForFunction(
        () =>
          (window as unknown as { blink: { status: ViewerStatus } }).blink.status.refusals.length >=
          2,
      );
      const s = await status(page);
      assert.deepEqual(s.refusals.map((r) => r.code).sort(), [
        'blink-loop',
        'blink-outside-window',
      ]);
      await page.waitForTimeout(100);
      assert.ok(
        (await colours(page)).green > 200_000,
        'the refused versions never ran: still green',
      );
      fs.appendFileSync(log, redraw(4, 'clear_color 1 0 0 1; clear color'));
      await page.waitForTimeout(300);
      assert.ok((await colours(page)).red > 200_000, 'a good new version is drawn');
    } finally {
      await b.close();
      v.r.proc.kill();
    }
  },
);

void test(
  'the game: clicks in the viewer reach the guest through /dev/blink, and its answer is drawn',
  { skip },
  async () => {
    const vm = start(['run', example('blink-game')]);
    const id = await vm.vmId;
    await until(() => vm.stdout().includes('ready'), 'the game to upload its display');
    const v = await viewer([id]);
    const b = await launch();
    try {
      const page = await b.context.newPage();
      await page.goto(v.url);
      await framesOver(page, 5);
      const yellow = async () => {
        const png = PNG.sync.read(await page.locator('canvas').screenshot());
        let n = 0;
        for (let i = 0; i < png.data.length; i += 4)
          if (png.data[i] > 200 && png.data[i + 1] > 150 && png.data[i + 2] < 60) n++;
        return n;
      };
      assert.equal(await yellow(), 0, 'no score yet');
      for (let i = 0; i < 3; i++)
        await page.locator('canvas').click({ position: { x: 100 + i * 50, y: 300 } });
      await until(() => vm.stdout().includes('score 3'), 'the guest to count three clicks', 30_000);
      await page.waitForTimeout(300);
      assert.ok((await yellow()) >= 250, 'three score squares are drawn');
    } finally {
      await b.close();
      v.r.proc.kill();
      vm.proc.kill();
    }
  },
);
