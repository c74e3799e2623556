// The VM processes the node daemon starts are sandboxed: Node's permission model
// with file access to their own folder only, no child processes, workers or
// addons; as root, each its own uid. Checked on real launched VMs: their command
// line is read back from /proc and the same sandbox is tried from outside.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Cgroups } from '../../src/host/cgroups.js';
import { ProcessLauncher } from '../../src/host/launcher.js';
import { ROOT, roam, start, tmpdir, until } from '../helpers.js';

const pidsOf = (parent: number) =>
  fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const st = fs.readFileSync(`/proc/${d}/stat`, 'latin1');
        return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === parent;
      } catch {
        return false;
      }
    })
    .map(Number);

async function oneVm(o: { uid?: number; cgroups?: boolean } = {}) {
  const stateDir = tmpdir('sandbox');
  // The VM's uid must get through to its folder: the state (and the test run's private
  // TMPDIR above it, 0700, else the VM dies making its registry) let it pass, no more.
  if (o.uid !== undefined)
    for (const d of [stateDir, path.dirname(stateDir)]) fs.chmodSync(d, 0o711);
  const cg = o.cgroups ? Cgroups.find() : undefined;
  assert.notEqual(typeof cg, 'string', typeof cg === 'string' ? cg : '');
  const l = new ProcessLauncher({
    ...{ stateDir, host: '127.0.0.1', warm: 0, log: () => {}, uid: o.uid },
    cgroups: cg as Cgroups | undefined,
  });
  const vm = await l.launch({
    jobId: '00'.repeat(16),
    key: Buffer.alloc(32, 1),
    loaderSha256: '00'.repeat(32),
    memoryMiB: 64,
    cpuShare: 100,
    ports: 1,
  });
  const pid = pidsOf(process.pid).find((p) =>
    fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(path.join(stateDir, vm.vmId)),
  );
  assert.ok(pid, 'the VM is a child process of the launcher');
  return {
    vm,
    pid,
    stateDir,
    dir: path.join(stateDir, vm.vmId),
    done: () => {
      vm.purge();
      return vm.exited.then(() => fs.rmSync(stateDir, { recursive: true, force: true }));
    },
  };
}

test('a launched VM runs under the permission model, confined to its folder', async () => {
  const { vm, pid, dir, done } = await oneVm();
  try {
    assert.match(vm.addr, /^127\.0\.0\.1:\d+$/, 'a warm cstrap reports where it accepts');
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    assert.ok(argv.includes('--experimental-permission'));
    assert.ok(argv.includes(`--allow-fs-write=${dir}/*`));
    for (const a of argv) assert.doesNotMatch(a, /--allow-(addons|child-process|worker|wasi)/, a);
    assert.equal(
      fs
        .readFileSync(`/proc/${pid}/environ`, 'utf8')
        .split('\0')
        .find((e) => e.startsWith('ROAM_HOME=')),
      `ROAM_HOME=${dir}`,
    );

    // The same flags, from outside: what such a process may and may not do.
    const flags = argv.slice(
      1,
      argv.findIndex((a) => a.endsWith('roam.js')),
    );
    const attempt = (code: string) =>
      spawnSync(process.execPath, [...flags, '-e', code], { cwd: dir, encoding: 'utf8' });
    assert.equal(
      attempt(`require('fs').writeFileSync(${JSON.stringify(path.join(dir, 'ok'))}, 'x')`).status,
      0,
      'writes in its own folder',
    );
    for (const code of [
      `require('fs').readFileSync('/etc/hostname')`,
      `require('fs').writeFileSync(${JSON.stringify(path.join(path.dirname(dir), 'escape'))}, 'x')`,
      `require('fs').writeFileSync(${JSON.stringify(path.join(ROOT, 'escape'))}, 'x')`,
      `require('child_process').execSync('true')`,
      `new (require('worker_threads').Worker)('1', { eval: true })`,
    ]) {
      const r = attempt(code);
      assert.notEqual(r.status, 0, `allowed: ${code}`);
      assert.match(r.stderr, /ERR_ACCESS_DENIED/, code);
    }
    assert.equal(fs.existsSync(path.join(ROOT, 'escape')), false);

    // Issue 13, attack 7: with the README's layout the node secret and the broker's
    // ledger sit in the roam folder. A VM reads the roam code, not them.
    const secret = path.join(ROOT, `.attack-n1-${process.pid}.secret`);
    fs.writeFileSync(secret, 'ab'.repeat(32), { mode: 0o644 });
    try {
      const r = attempt(
        `console.log(require('fs').readFileSync(${JSON.stringify(secret)}, 'utf8'))`,
      );
      assert.notEqual(r.status, 0, 'a VM read a file in the roam folder');
      assert.match(r.stderr, /ERR_ACCESS_DENIED/);
      assert.doesNotMatch(r.stdout, /abab/);
      const code = attempt(
        `require('fs').readFileSync(${JSON.stringify(path.join(ROOT, 'dist/src/host/packetd.js'))})`,
      );
      assert.equal(code.status, 0, `the roam code stays readable: ${code.stderr}`);
      const daemon = await roam([
        'node',
        '--id',
        'n1',
        '--secret-file',
        path.join(ROOT, 'dist/src/x.secret'),
      ]);
      assert.notEqual(daemon.code, 0);
      assert.match(daemon.stderr, /inside the roam code, which every VM may read/);
    } finally {
      fs.rmSync(secret, { force: true });
    }
  } finally {
    await done();
  }
});

// Root only, and only where the roam folder is readable by other users (a fresh
// clone inside a private temporary folder is not: the VM could not load roam).
const readableByAll = (p: string): boolean =>
  p === '/' || ((fs.statSync(p).mode & 0o005) === 0o005 && readableByAll(path.dirname(p)));
const canIsolate = process.getuid?.() === 0 && readableByAll(ROOT);

test(
  'as root, each VM runs as a user of its own',
  { skip: canIsolate ? false : 'needs root and a roam folder other users can read' },
  async () => {
    const a = await oneVm({ uid: 200_000 });
    try {
      const uid = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${a.pid}/status`, 'utf8'))?.[1];
      assert.equal(uid, '200000');
      assert.equal(fs.statSync(a.dir).uid, 200_000, 'it owns its folder');
      assert.match(execFileSync('ls', ['-ld', a.dir], { encoding: 'utf8' }), /^drwx------/);
      // It runs on as that user: it wrote its registry into its folder and is not a zombie.
      await until(() => fs.existsSync(path.join(a.dir, 'vms')), 'its registry', 10_000);
      assert.match(fs.readFileSync(`/proc/${a.pid}/status`, 'utf8'), /^State:\s+[RS]/m);
    } finally {
      await a.done();
    }
  },
);

// Issue 13: as root with cgroups, the host bounds a VM's memory (token + 160 MiB for
// Node), CPU (cpuShare 100 = one core) and tasks, whatever the VM's own code does.
const cgroupV1 = fs.existsSync('/sys/fs/cgroup/memory/cgroup.procs');
test(
  'as root with --cgroups, a VM runs in cgroups with its token limits',
  {
    skip: process.getuid?.() === 0 && cgroupV1 ? false : 'needs root and cgroup v1 memory/cpu/pids',
  },
  async () => {
    const a = await oneVm({ cgroups: true });
    try {
      const groups = fs.readFileSync(`/proc/${a.pid}/cgroup`, 'utf8');
      for (const ctl of ['memory', 'cpu', 'pids'])
        assert.match(groups, new RegExp(`:${ctl}(,[a-z]+)?:/roam/${a.vm.vmId}\\n`), groups);
      const read = (ctl: string, f: string) =>
        fs.readFileSync(`/sys/fs/cgroup/${ctl}/roam/${a.vm.vmId}/${f}`, 'utf8').trim();
      assert.equal(read('memory', 'memory.limit_in_bytes'), String((64 + 160) * 1048576));
      assert.equal(read('cpu', 'cpu.cfs_quota_us'), '100000');
      assert.equal(read('pids', 'pids.max'), '64');
    } finally {
      await a.done();
    }
    assert.equal(
      fs.existsSync(`/sys/fs/cgroup/memory/roam/${a.vm.vmId}`),
      false,
      'removed with the VM',
    );
  },
);

// Issue 13: cgroups are on by default as root wherever cgroupfs allows them (v2, or v1 as
// on this kernel), and the daemon says which isolation is on; --no-cgroups turns them off.
const found = process.getuid?.() === 0 ? Cgroups.find() : 'not root';
test(
  'as root, roam node puts its VMs in cgroups by default and says so; --no-cgroups does not',
  { skip: typeof found === 'string' ? `needs writable cgroups: ${found}` : false, timeout: 60_000 },
  async () => {
    for (const off of [false, true]) {
      const dir = tmpdir('cgdefault'),
        state = path.join(dir, 'vms');
      fs.writeFileSync(path.join(dir, 'secret'), 'ab'.repeat(32), { mode: 0o600 });
      const n = start([
        ...['node', '--id', 'n1', '--secret-file', path.join(dir, 'secret')],
        ...['--listen', '127.0.0.1:0', '--state', state, '--warm', '1'],
        ...(off ? ['--no-cgroups'] : []),
      ]);
      n.vmId.catch(() => {});
      try {
        await until(() => /udp:\/\//.test(n.stdout()), `the node: ${n.stderr()}`, 30_000);
        const vmPid = () =>
          pidsOf(n.proc.pid!).find((p) =>
            fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(state),
          );
        await until(() => vmPid() !== undefined, 'the warm VM', 30_000);
        const groups = fs.readFileSync(`/proc/${vmPid()}/cgroup`, 'utf8');
        const vmId = fs.readdirSync(state).find((d) => d.startsWith('vm-'))!;
        const v = (found as Cgroups).version;
        if (off) {
          assert.doesNotMatch(groups, /\/roam\/vm-/, groups);
          assert.match(n.stderr(), /NOT ISOLATED: .*cgroups \(--no-cgroups\)/);
        } else {
          assert.match(groups, new RegExp(`/roam/${vmId}\n`), groups);
          assert.match(n.stderr(), new RegExp(`isolated: .*tasks \\(cgroup v${v}\\)`));
          assert.doesNotMatch(n.stderr(), /cgroups \(/);
        }
      } finally {
        n.proc.kill('SIGKILL');
        await n.exited;
      }
    }
  },
);

// A cgroup that cannot be written once the daemon runs (its hierarchy was found writable at
// start-up) fails the launch, and the VM process is killed: never a VM outside its limits.
test(
  'a VM whose cgroup cannot be set is not left running',
  { skip: process.getuid?.() === 0 ? false : 'needs root (to start VMs as the launcher does)' },
  async () => {
    const root = tmpdir('cgfail'),
      stateDir = tmpdir('cgfail-state');
    for (const c of ['memory', 'cpu', 'pids']) {
      fs.mkdirSync(path.join(root, c));
      fs.writeFileSync(path.join(root, c, 'cgroup.procs'), '');
    }
    const cg = Cgroups.find(root);
    assert.ok(cg instanceof Cgroups, typeof cg === 'string' ? cg : '');
    fs.rmSync(path.join(root, 'memory', 'roam'), { recursive: true });
    fs.writeFileSync(path.join(root, 'memory', 'roam'), ''); // a file: no group can be made in it
    const l = new ProcessLauncher({
      stateDir,
      host: '127.0.0.1',
      warm: 0,
      log: () => {},
      cgroups: cg,
    });
    await assert.rejects(
      l.launch({
        jobId: '00'.repeat(16),
        key: Buffer.alloc(32, 1),
        loaderSha256: '00'.repeat(32),
        memoryMiB: 64,
        cpuShare: 100,
        ports: 1,
      }),
      /ENOTDIR|EEXIST/,
    );
    await until(
      () =>
        !pidsOf(process.pid).some((p) => {
          try {
            const st = fs.readFileSync(`/proc/${p}/stat`, 'latin1');
            const zombie = st.slice(st.lastIndexOf(')') + 2).startsWith('Z');
            return !zombie && fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(stateDir);
          } catch {
            return false;
          }
        }),
      'the VM process killed',
      10_000,
    );
  },
);
