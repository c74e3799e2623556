// The daemon's cgroup setup (src/host/cgroups.ts) on a cgroupfs laid out as v2 and
// as v1 in a temporary folder: this kernel's v2 hierarchy has no memory, cpu or
// pids (they are bound to v1), so the v2 files are checked here as written, and
// the v1 groups on the real cgroupfs in test/e2e/node-sandbox.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Cgroups } from '../../src/host/cgroups.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'roam-cg-'));
const why = (c: Cgroups | string) => (typeof c === 'string' ? c : `v${c.version}`);
const read = (...p: string[]) => fs.readFileSync(path.join(...p), 'utf8');

test('cgroup v2: controllers turned on for roam/, then memory.max, cpu.max, pids.max per VM', () => {
  const root = tmp();
  try {
    fs.writeFileSync(path.join(root, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids\n');
    const cg = Cgroups.find(root);
    assert.ok(cg instanceof Cgroups && cg.version === 2, why(cg));
    assert.equal(read(root, 'cgroup.subtree_control'), '+memory +cpu +pids');
    assert.equal(read(root, 'roam', 'cgroup.subtree_control'), '+memory +cpu +pids');
    cg.set('vm-0123456789ab', { memoryMiB: 64 + 160, cpuShare: 50 }, 4242);
    const g = path.join(root, 'roam', 'vm-0123456789ab');
    assert.equal(read(g, 'memory.max'), String(224 * 1048576));
    assert.equal(read(g, 'cpu.max'), '50000 100000', 'cpuShare 50: half of one core');
    assert.equal(read(g, 'pids.max'), '64');
    assert.equal(read(g, 'cgroup.procs'), '4242');
    cg.set('vm-0123456789ab', { memoryMiB: 1, cpuShare: 0 }); // its token's, after the warm limits
    assert.equal(read(g, 'cpu.max'), '1000 100000', 'never no CPU at all');
    assert.equal(read(g, 'memory.max'), '1048576');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('cgroup v1: a group per controller; v2 without the controllers or nothing at all: why not', () => {
  const root = tmp();
  try {
    for (const c of ['memory', 'cpu', 'pids']) {
      fs.mkdirSync(path.join(root, c));
      fs.writeFileSync(path.join(root, c, 'cgroup.procs'), '');
    }
    const cg = Cgroups.find(root);
    assert.ok(cg instanceof Cgroups && cg.version === 1, why(cg));
    cg.set('vm-0123456789ab', { memoryMiB: 256, cpuShare: 100 }, 7);
    assert.equal(
      read(root, 'memory/roam/vm-0123456789ab/memory.limit_in_bytes'),
      String(256 << 20),
    );
    assert.equal(read(root, 'cpu/roam/vm-0123456789ab/cpu.cfs_quota_us'), '100000');
    assert.equal(read(root, 'pids/roam/vm-0123456789ab/pids.max'), '64');
    assert.equal(read(root, 'pids/roam/vm-0123456789ab/cgroup.procs'), '7');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  const v2 = tmp();
  try {
    fs.writeFileSync(path.join(v2, 'cgroup.controllers'), 'hugetlb\n');
    assert.match(why(Cgroups.find(v2)), /lacks memory, cpu, pids/);
    assert.match(why(Cgroups.find(path.join(v2, 'missing'))), /neither cgroup v2 nor v1/);
  } finally {
    fs.rmSync(v2, { recursive: true, force: true });
  }
});
