// Exactly once, whatever fails around a migration's commit: source, destination
// and home are real processes, and each link goes through its own proxy that
// drops, duplicates, corrupts or holds frames, or cuts the link. After every test
// exactly one copy ran: the source's output followed by the destination's is the
// unmigrated run's output, no line twice and none missing.
import assert from 'node:assert/strict';
import { test as nodeTest } from 'node:test';
import { example, roam, sleep, start, tmpdir, until, type Running } from '../helpers.js';
import {
  cstrap,
  decisionBytes,
  home,
  proxy,
  READY_BYTES,
  type FrameHook,
  type Home,
  type Proxy,
} from '../migrate-fixtures.js';

const PROG = ['counter', '40', '40'];
// Long enough for a loaded machine to finish the stream and build the VM in it.
const WINDOW = '10000';
let reference = '';
/** A hang is a failure, not a stuck run. */
const test = (name: string, fn: () => Promise<void>): void =>
  void nodeTest(name, { timeout: 120_000 }, fn);

async function source(): Promise<{ vm: Running; id: string }> {
  if (!reference) {
    const r = await roam(['run', '--quiet', example(PROG[0]), ...PROG.slice(1)]);
    assert.equal(r.code, 0, r.stderr);
    reference = r.stdout;
  }
  const vm = start(['run', example(PROG[0]), ...PROG.slice(1)]);
  const id = await vm.vmId;
  await until(() => vm.stdout().length > 0, 'program start');
  return { vm, id };
}

const pass: FrameHook = (_d, _i, f) => f;

interface World {
  vm: Running;
  id: string;
  dst: Running & { addr: string };
  sd: Proxy;
  h: Home | null;
  sh: Proxy | null;
  dh: Proxy | null;
  migrate: Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Source → proxy → cstrap, and (with a home) source → proxy → home ← proxy ← cstrap. */
async function world(
  o: { home?: boolean; sd?: (w: () => World) => FrameHook; sh?: FrameHook; dh?: FrameHook } = {},
): Promise<World> {
  // eslint-disable-next-line prefer-const -- assigned once the world exists; hooks read it later
  let w!: World;
  const h = o.home === false ? null : await home(tmpdir('home'));
  const sh = h ? await proxy(h.addr, o.sh ?? pass, true) : null;
  const dh = h ? await proxy(h.addr, o.dh ?? pass, true) : null;
  const dst = await cstrap(dh ? ['--home-via', dh.addr] : []);
  const sd = await proxy(dst.addr, o.sd ? o.sd(() => w) : pass);
  const { vm, id } = await source();
  const args = ['migrate', id, '--to', sd.addr, '--commit-window', WINDOW];
  if (sh) args.push('--home', sh.addr);
  w = { vm, id, dst, sd, h, sh, dh, migrate: roam(args) };
  return w;
}

/** Exactly one copy ran, and together they printed the reference once. Returns where it ended. */
async function exactlyOnce(w: World): Promise<'stayed' | 'moved'> {
  await w.vm.exited;
  const m = await w.migrate;
  if (w.vm.stdout() === reference) {
    // The source ran to the end: the destination must never have run.
    await sleep(1500);
    const why = `\n--- migrate:\n${m.stderr}\n--- destination:\n${w.dst.stderr()}\n--- home:\n${w.h?.stderr() ?? ''}`;
    assert.equal(w.dst.stdout(), '', `the destination ran too: ${why}`);
    assert.doesNotMatch(w.dst.stderr(), /roam: vm \S+ arrived/, why);
    w.dst.proc.kill();
    return 'stayed';
  }
  assert.equal(await w.dst.exited, 0, w.dst.stderr());
  assert.equal(
    w.vm.stdout() + w.dst.stdout(),
    reference,
    `source then destination must print the reference once: ${m.stderr}`,
  );
  return 'moved';
}

function done(w: World): void {
  w.h?.proc.kill();
  for (const p of [w.sd, w.sh, w.dh]) p?.close();
}

const isReady = (dir: string, f: Buffer) => dir === 'down' && f.length === READY_BYTES;
const isDecision = (dir: string, f: Buffer) =>
  dir === 'up' && (f.length === decisionBytes('commit') || f.length === decisionBytes('abort'));
/** Apply `fault` to the first frame that `which` picks, pass everything else. */
const once = (
  which: (dir: string, f: Buffer) => boolean,
  fault: (f: Buffer) => Buffer | Buffer[] | 'cut',
): FrameHook => {
  let hit = false;
  return (d, _i, f) => {
    if (hit || !which(d, f)) return f;
    hit = true;
    return fault(f);
  };
};
const decidedDown = (d: string, f: Buffer) =>
  d === 'down' && (f.length === decisionBytes('commit') || f.length === decisionBytes('abort'));
const flip = (f: Buffer): Buffer => {
  const g = Buffer.from(f);
  g[g.length - 3] ^= 1;
  return g;
};

test('with a home: a clean migration commits, and home wrote it down', async () => {
  const w = await world();
  assert.equal(await exactlyOnce(w), 'moved');
  const l = await roam(['home', 'ledger', '--db', w.h!.db, '--json']);
  const rows = l.stdout
    .trim()
    .split('\n')
    .map((x) => JSON.parse(x) as { decision: string });
  assert.deepEqual(
    rows.map((r) => r.decision),
    ['commit'],
  );
  done(w);
});

for (const [what, hook] of [
  ['dropped', () => []],
  ['corrupted', (f: Buffer) => flip(f)],
  ['duplicated', (f: Buffer) => [f, f]],
] as const) {
  test(`with a home: READY ${what} on its way to the source: one copy`, async () => {
    const w = await world({ sd: () => once(isReady, hook) });
    await exactlyOnce(w);
    done(w);
  });
  test(`with a home: the source's DECISION ${what}: the destination hears home, one copy`, async () => {
    const w = await world({ sd: () => once(isDecision, hook) });
    assert.equal(await exactlyOnce(w), 'moved');
    done(w);
  });
  test(`with a home: home's DECIDED to the source ${what}: one copy`, async () => {
    const w = await world({ sh: once(decidedDown, hook) });
    assert.equal(await exactlyOnce(w), 'moved');
    done(w);
  });
  test(`with a home: home's DECIDED to the destination ${what}: one copy`, async () => {
    const w = await world({ dh: once(decidedDown, hook) });
    assert.equal(await exactlyOnce(w), 'moved');
    done(w);
  });
}

test('with a home: source killed once the destination is READY: home commits to it', async () => {
  const w = await world({
    sd: (w) => (d, _i, f) => {
      if (isReady(d, f)) w().vm.proc.kill('SIGKILL');
      return isReady(d, f) ? 'cut' : f;
    },
  });
  await w.vm.exited;
  assert.equal(await w.dst.exited, 0, w.dst.stderr());
  assert.equal(w.vm.stdout() + w.dst.stdout(), reference);
  assert.match(w.h!.stderr(), /commit \(destination ready; the source (had )?died\)/);
  done(w);
});

test('with a home: destination killed once READY, before the decision: the source runs on', async () => {
  const w = await world({
    sd: (w) => (d, _i, f) => {
      if (isReady(d, f)) w().dst.proc.kill('SIGKILL');
      return f;
    },
  });
  await w.vm.exited;
  assert.equal(w.vm.stdout(), reference);
  assert.match((await w.migrate).stderr, /runs on here; nothing was lost/);
  done(w);
});

test('with a home: home killed after BEGIN, restarted on the same ledger: one copy', async () => {
  const dir = tmpdir('home');
  let h = await home(dir);
  const port = h.addr.slice(h.addr.lastIndexOf(':') + 1);
  const dst = await cstrap();
  const sd = await proxy(dst.addr, (d, _i, f) => {
    if (isReady(d, f)) h.proc.kill('SIGKILL');
    return f;
  });
  const { vm, id } = await source();
  const migrate = roam([
    'migrate',
    id,
    '--to',
    sd.addr,
    '--home',
    h.addr,
    '--commit-window',
    '8000',
  ]);
  await until(() => h.proc.exitCode !== null || h.proc.signalCode !== null, 'home killed');
  await sleep(1000);
  h = await home(dir, `127.0.0.1:${port}`);
  const w: World = { vm, id, dst, sd, h, sh: null, dh: null, migrate };
  await exactlyOnce(w);
  done(w);
});

test('with a home: home killed for good after BEGIN: the source resumes after the window, the destination never runs', async () => {
  const dir = tmpdir('home');
  const h = await home(dir);
  const dst = await cstrap();
  const sd = await proxy(dst.addr, (d, _i, f) => {
    if (d === 'up' && f.length > 1000) h.proc.kill('SIGKILL');
    return f;
  });
  const { vm, id } = await source();
  const migrate = roam([
    'migrate',
    id,
    '--to',
    sd.addr,
    '--home',
    h.addr,
    '--commit-window',
    WINDOW,
  ]);
  const w: World = { vm, id, dst, sd, h, sh: null, dh: null, migrate };
  assert.equal(await exactlyOnce(w), 'stayed');
  done(w);
});

test('with a home: source-home link partitioned at READY, healed after 2 s: one copy', async () => {
  // eslint-disable-next-line prefer-const -- the proxy exists only once the world does
  let sh!: Proxy;
  const w = await world({
    sd: () => (d, _i, f) => {
      if (isReady(d, f)) {
        sh.partition();
        setTimeout(() => sh.heal(), 2000);
      }
      return f;
    },
  });
  sh = w.sh!;
  await exactlyOnce(w);
  done(w);
});

test('with a home: source-home link partitioned past the window: one copy', async () => {
  // eslint-disable-next-line prefer-const -- the proxy exists only once the world does
  let sh!: Proxy;
  const w = await world({
    sd: () => (d, _i, f) => {
      if (isReady(d, f)) {
        sh.partition();
        setTimeout(() => sh.heal(), 15000);
      }
      return f;
    },
  });
  sh = w.sh!;
  await exactlyOnce(w);
  done(w);
});

test('with a home: destination-home link partitioned: the destination never runs, the source runs on', async () => {
  const w = await world();
  w.dh!.partition();
  assert.equal(await exactlyOnce(w), 'stayed');
  done(w);
});

test('with a home: source-destination link partitioned at READY: one copy', async () => {
  // eslint-disable-next-line prefer-const -- the proxy exists only once the world does
  let sd!: Proxy;
  const w = await world({
    sd: () => (d, _i, f) => {
      if (isReady(d, f)) sd.partition();
      return f;
    },
  });
  sd = w.sd;
  await exactlyOnce(w);
  done(w);
});

test('a silent link in pre-copy: the source notices and runs on (no hang)', async () => {
  // eslint-disable-next-line prefer-const -- the proxy exists only once the world does
  let sd!: Proxy;
  const w = await world({
    home: false,
    sd: () => (d, i, f) => {
      if (d === 'up' && i === 5) sd.partition();
      return f;
    },
  });
  sd = w.sd;
  assert.equal(await exactlyOnce(w), 'stayed');
  assert.match((await w.migrate).stderr, /nothing from .* for \d+ ms|silent/);
  done(w);
});

test('without a home: the DECISION dropped: the source re-delivers it, one copy', async () => {
  const w = await world({ home: false, sd: () => once(isDecision, () => []) });
  assert.equal(await exactlyOnce(w), 'moved');
  done(w);
});

test('without a home: READY corrupted: the source aborts and tells the destination, one copy', async () => {
  const w = await world({ home: false, sd: () => once(isReady, flip) });
  assert.equal(await exactlyOnce(w), 'stayed');
  done(w);
});
