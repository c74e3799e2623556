// Hypercube boot (thesis 8.4): one image, packed once, booted on 8 empty cstraps
// (separate processes). The root pulls it from the source over HTTP; every node
// that has it serves it on to i | 2^d. Each VM runs the program from its start and
// prints what the program prints run directly; the source sent exactly one copy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { example, roam, tmpdir } from '../helpers.js';
import { serve } from '../cluster-fixtures.js';
import { cstrap } from '../migrate-fixtures.js';

const N = 8;
const PROGRAM = [example('bigmem'), '4', '3'];

interface Node {
  node: number;
  from: string;
  round: number;
  serving: string | null;
}

void test(
  'roam boot-hypercube: 8 cstraps boot one image, the source sends one copy',
  { timeout: 240_000 },
  async (t) => {
    const dir = tmpdir('hypercube');
    const img = path.join(dir, 'app.img');
    const reference = await roam(['run', '--quiet', ...PROGRAM]);
    assert.equal(reference.code, 0, reference.stderr);
    const packed = await roam(['run', '--pack', img, ...PROGRAM]);
    assert.equal(packed.code, 0, packed.stderr);
    const sha256 = packed.stdout.trim();
    assert.match(sha256, /^[0-9a-f]{64}$/);

    const src = await serve(['serve-image', img, '--json'], /"uri":"(http:[^"]+)"/);
    t.after(() => src.r.proc.kill('SIGKILL'));
    const nodes = await Promise.all(Array.from({ length: N }, () => cstrap()));
    t.after(() => nodes.forEach((n) => n.proc.kill('SIGKILL')));
    const boot = await roam([
      'boot-hypercube',
      '--from',
      src.match,
      '--to',
      ...nodes.map((n) => n.addr),
      '--json',
    ]);
    assert.equal(boot.code, 0, boot.stderr);
    const res = JSON.parse(boot.stdout) as {
      nodes: Node[];
      fromSource: number;
      rounds: number;
      sha256: string;
    };
    assert.equal(res.sha256, sha256, 'every node booted the packed image');
    assert.equal(res.rounds, Math.log2(N));
    assert.equal(res.fromSource, 1);
    // Node i' pulled from node i' without its highest bit, in round (its bit length).
    for (const n of res.nodes) {
      if (n.node === 0) {
        assert.equal(n.from, src.match);
        continue;
      }
      const parent = n.node & ~(1 << (31 - Math.clz32(n.node)));
      assert.equal(n.from, res.nodes[parent].serving, `node ${n.node} pulled from node ${parent}`);
      assert.equal(n.round, 32 - Math.clz32(n.node));
    }

    const codes = await Promise.all(nodes.map((n) => n.exited));
    assert.deepEqual(
      codes,
      nodes.map(() => 0),
      nodes.map((n) => n.stderr()).join('\n'),
    );
    for (const n of nodes) {
      assert.equal(n.stdout(), reference.stdout, 'each VM runs the program from its start');
      assert.match(n.stderr(), /hash and MAC verified/);
    }
    // The source's own count: one copy, and nobody else pulled from it.
    src.r.proc.kill('SIGTERM');
    await src.r.exited;
    const events = src.r
      .stderr()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; copies?: number });
    assert.equal(events.filter((e) => e.event === 'served').length, 1, src.r.stderr());
    assert.equal(events.find((e) => e.event === 'totals')?.copies, 1);
  },
);

void test(
  'a tampered image, another image than the pinned one, and a stranger are refused',
  { timeout: 120_000 },
  async (t) => {
    const dir = tmpdir('hypercube-refuse');
    const img = path.join(dir, 'app.img');
    const packed = await roam(['run', '--pack', img, ...PROGRAM]);
    assert.equal(packed.code, 0, packed.stderr);
    // A flipped byte: the source refuses to serve what does not verify under its key.
    const bad = path.join(dir, 'bad.img');
    const bytes = fs.readFileSync(img);
    bytes[bytes.length >> 1] ^= 1;
    fs.writeFileSync(bad, bytes);
    const tampered = await roam(['serve-image', bad]);
    assert.notEqual(tampered.code, 0);
    assert.match(tampered.stderr, /MAC|tampered|corrupt/i);

    const src = await serve(['serve-image', img, '--json'], /"uri":"(http:[^"]+)"/);
    t.after(() => src.r.proc.kill('SIGKILL'));
    const node = await cstrap();
    t.after(() => node.proc.kill('SIGKILL'));
    // Pinned to another image: the cstrap refuses before booting anything, and stays empty.
    const other = await roam([
      'boot-hypercube',
      '--from',
      src.match,
      '--to',
      node.addr,
      '--sha256',
      'ab'.repeat(32),
    ]);
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /another image than the pinned/);
    // A cstrap with another key cannot even be told; nor can it pull (the source's channel refuses it).
    const key = path.join(dir, 'stranger.key');
    fs.writeFileSync(key, randomBytes(32));
    const stranger = await cstrap(['--key', key]);
    t.after(() => stranger.proc.kill('SIGKILL'));
    const told = await roam(['boot-hypercube', '--from', src.match, '--to', stranger.addr]);
    assert.notEqual(told.code, 0);
    assert.match(told.stderr, /key/);
    const strangerBoot = await roam([
      'boot-hypercube',
      '--from',
      src.match,
      '--to',
      stranger.addr,
      '--key',
      key,
    ]);
    assert.notEqual(strangerBoot.code, 0);
    assert.match(strangerBoot.stderr, /does not hold the same key|refused/);
    // The pinned refusal left the first cstrap empty: the right image still boots there.
    const ok = await roam(['boot-hypercube', '--from', src.match, '--to', node.addr]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await node.exited, 0, node.stderr());
    assert.match(node.stdout(), /done checksum/);
    src.r.proc.kill('SIGTERM');
    await src.r.exited;
    assert.match(src.r.stderr(), /"event":"totals","copies":1,/);
  },
);
