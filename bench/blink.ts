// npm run bench:blink -- [--quick] [--rounds N] [--frames N] [--json FILE]
//
// Blink in headless Chromium (WebGL2 on SwiftShader, this machine has no GPU),
// with the gears guest (examples/gears.c) running in a real VM and `roam view`
// serving its display:
//   Table 9.4  frames per second of the gears: JIT against the interpreter against
//              plain hand-written WebGL2 of the same scene (rounds interleaved)
//   Table 9.3  one GL call (clearColor) from JIT-compiled code against a direct call
//   9.1.8      the display across a live migration of the guest to a cstrap: the
//              largest gap between frames the viewer drew, against the VM's downtime
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import type { ViewerStatus } from '../src/blink/viewer-page.js';
import { launch, noBrowser } from '../test/browser.js';
import { jsonPath, table, writeJson } from './util.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ROAM = path.join(ROOT, 'bin/roam.js');
const arg = (k: string, d: number) => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? Number(process.argv[i + 1]) : d;
};
const quick = process.argv.includes('--quick');
const ROUNDS = arg('--rounds', quick ? 2 : 5);
const FRAMES = arg('--frames', quick ? 100 : 400);
const procs: ChildProcess[] = [];

/** Starts roam; resolves with the process once `ready` matches its stdout or stderr. */
function roam(args: string[], ready: RegExp): Promise<{ p: ChildProcess; m: RegExpExecArray }> {
  const p = spawn(process.execPath, [ROAM, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  let text = '';
  return new Promise((res, rej) => {
    const t = setTimeout(
      () => rej(new Error(`roam ${args[0]}: no ${String(ready)} in 60 s: ${text}`)),
      60_000,
    );
    const on = (d: Buffer) => {
      text += d.toString();
      const m = ready.exec(text);
      if (m) {
        clearTimeout(t);
        res({ p, m });
      }
    };
    p.stdout.on('data', on);
    p.stderr.on('data', on);
    p.on('close', (c) => rej(new Error(`roam ${args[0]} exited (${c}): ${text}`)));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
type Win = { blink: { status: ViewerStatus; gl: WebGL2RenderingContext; last: unknown } };

async function fpsTable(page: Page) {
  const ways = ['native', 'jit', 'interp'] as const;
  const got: Record<string, number[]> = { native: [], jit: [], interp: [] };
  // Round -1 is thrown away: a page's first run is not like the others (nothing composited yet).
  for (let r = -1; r < ROUNDS; r++)
    for (const way of [...ways.slice((r + 3) % 3), ...ways.slice(0, (r + 3) % 3)])
      got[way].push(
        await page.evaluate(
          async ([w, n]) => {
            const m = (await import(
              ['/blink', 'bench-page.js'].join('/')
            )) as typeof import('../src/blink/bench-page.js');
            const b = (window as unknown as Win).blink;
            return m.fps(b.gl, b.last as never, w as 'jit', n as number);
          },
          [way, r < 0 ? 30 : FRAMES],
        ),
      );
  for (const w of ways) got[w].shift();
  const nat = median(got.native);
  return ways.map((w) => ({
    way:
      w === 'native'
        ? 'hand-written WebGL2'
        : w === 'jit'
          ? 'BlinkGL, JIT'
          : 'BlinkGL, interpreted',
    'fps (median)': Math.round(median(got[w])),
    'against hand-written': `${((median(got[w]) / nat) * 100).toFixed(1)}%`,
    runs: got[w].map(Math.round).join(' '),
  }));
}

async function perCallTable(page: Page) {
  const r = await page.evaluate(async () => {
    const m = (await import(
      ['/blink', 'bench-page.js'].join('/')
    )) as typeof import('../src/blink/bench-page.js');
    return m.perCall((window as unknown as Win).blink.gl, 100, 3000);
  });
  const d = median(r.direct);
  return [
    { call: 'gl.clearColor, direct', 'ns per call': median(r.direct), against: '1.00x' },
    {
      call: 'JIT, register operands (clamped)',
      'ns per call': median(r.jitRegisters),
      against: `${(median(r.jitRegisters) / d).toFixed(2)}x`,
    },
    {
      call: 'JIT, immediate operands',
      'ns per call': median(r.jitImmediates),
      against: `${(median(r.jitImmediates) / d).toFixed(2)}x`,
    },
  ];
}

async function migrationGap(page: Page, vm: string) {
  const { m } = await roam(['cstrap', '--listen', '127.0.0.1:0'], /cstrap listening on (\S+)/);
  await page.waitForFunction(() => (window as unknown as Win).blink.status.frames > 60);
  const before = await page.evaluate(() => ({
    t: performance.now(),
    epoch: (window as unknown as Win).blink.status.epoch,
  }));
  const mig = await roam(['migrate', vm, '--to', m[1], '--json'], /\{[^\n]*"downtimeMs"[^\n]*\}\n/);
  const line = /\{[^\n]*"downtimeMs"[^\n]*\}/.exec(mig.m[0])?.[0] ?? '{}';
  const res = JSON.parse(line) as { downtimeMs?: number; totalMs?: number };
  await page.waitForFunction(
    (e) => (window as unknown as Win).blink.status.epoch !== e,
    before.epoch,
    { timeout: 30_000 },
  );
  await page.waitForTimeout(1000);
  const s = await page.evaluate(() => (window as unknown as Win).blink.status);
  const times = s.frameTimes.filter((t) => t >= before.t);
  const gaps = times.slice(1).map((t, i) => t - times[i]);
  const frame = median(gaps);
  const worst = Math.max(...gaps);
  return {
    'VM downtime (roam migrate)': `${(res.downtimeMs ?? NaN).toFixed(1)} ms`,
    'viewer: frames drawn': times.length,
    'median frame interval': `${frame.toFixed(1)} ms`,
    'largest frame interval': `${worst.toFixed(1)} ms`,
    'frames missed': Math.max(0, Math.round(worst / frame) - 1),
    'display rebuilt after the move': `${(s.loadedAt - before.t).toFixed(0)} ms after the migrate began (rebuild ${s.loadMs.toFixed(1)} ms)`,
    raw: { downtimeMs: res.downtimeMs, frameMs: frame, worstMs: worst, loadMs: s.loadMs },
  };
}

async function main(): Promise<void> {
  const why = noBrowser();
  if (why) throw new Error(why);
  const { m: vmM } = await roam(
    ['run', path.join(ROOT, 'examples/gears.wasm')],
    /roam: vm ([0-9a-f]+) running/,
  );
  const vm = vmM[1];
  const { m: urlM } = await roam(['view', vm, '--json'], /"url":"([^"]+)"/);
  const b = await launch();
  try {
    const bench = await b.context.newPage();
    await bench.goto(`${urlM[1]}?loop=off`);
    await bench.waitForFunction(() => (window as unknown as Win).blink?.status.loads > 0);
    const fps = await fpsTable(bench);
    console.log(
      `\nGears, 512x512, ${FRAMES} frames a run, ${ROUNDS} rounds (thesis Table 9.4)\n${table(fps)}`,
    );
    const calls = await perCallTable(bench);
    console.log(`\nOne GL call (thesis Table 9.3)\n${table(calls)}`);
    await bench.close();
    const live = await b.context.newPage();
    await live.goto(urlM[1]);
    const gap = await migrationGap(live, vm);
    const { raw, ...shown } = gap;
    console.log(`\nThe display across a live migration (9.1.8)\n${table([shown])}`);
    const out = jsonPath('blink');
    writeJson(out, { fps, calls, migration: { ...shown, ...raw }, frames: FRAMES, rounds: ROUNDS });
    console.log(`\nwrote ${out}`);
  } finally {
    await b.close();
    for (const p of procs) if (p.exitCode === null) p.kill();
  }
}

main().catch((e: unknown) => {
  for (const p of procs) if (p.exitCode === null) p.kill();
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
