// --json on every command family, driven as a script would: results and events
// are JSON objects one a line, a refusal is one too (code, message, exit status),
// and the exit statuses are the documented ones (2 usage, 3 refused).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { example, roam, start, tmpdir, until, type Running } from '../helpers.js';

/** Every line of `text` is one JSON object: the objects. */
function lines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON line: ${l}`);
      }
    });
}
const one = (text: string): Record<string, unknown> => {
  const all = lines(text);
  assert.equal(all.length, 1, text);
  return all[0];
};

test('VM commands: run, ps, checkpoint, inspect, stop, restore, and their refusals', async () => {
  const dir = tmpdir('cli-json');
  // A bad value is a usage error: exit 2, the flag named, as JSON on stdout.
  const bad = await roam(['checkpoint', 'x', '-o', 'f', '--max-rounds', 'abc', '--json']);
  assert.equal(bad.code, 2);
  const e = one(bad.stdout);
  assert.equal(e.event, 'error');
  assert.equal(e.code, 'invalid-argument');
  assert.equal(e.exit, 2);
  assert.match(String(e.message), /--max-rounds/);
  assert.equal(bad.stderr, '');
  // An unknown VM is refused input: exit 3.
  const unknown = await roam(['stop', 'ffffffffffff', '--json']);
  assert.equal(unknown.code, 3, unknown.stderr);
  assert.equal(one(unknown.stdout).exit, 3);
  // run's stdout is the program's: its events and errors are JSON lines on stderr.
  const missing = await roam(['run', '--json', '--dir', `${dir}/nope::/x`, example('args')]);
  assert.equal(missing.code, 2);
  assert.equal(missing.stdout, '');
  assert.match(String(one(missing.stderr).message), /--dir.*does not exist/);
  const ran = await roam(['run', '--json', '--memory', '64M', example('args'), 'a', '--json']);
  assert.equal(ran.code, 0, ran.stderr);
  assert.match(ran.stdout, /argv\[1\]=a\nargv\[2\]=--json\n/);
  assert.ok(lines(ran.stderr).some((l) => l.event === 'running' && typeof l.id === 'string'));

  const det = await roam(['run', '--detach', '--json', example('counter'), '100000', '50']);
  assert.equal(det.code, 0, det.stderr);
  const id = String(one(det.stdout).id);
  let restored: Running | undefined;
  try {
    const ps = JSON.parse((await roam(['ps', '--json'])).stdout) as Array<{ id: string }>;
    assert.ok(ps.some((v) => v.id === id));
    const file = path.join(dir, 'vm.ckpt');
    const cp = await roam(['checkpoint', id, '-o', file, '--json']);
    assert.equal(cp.code, 0, cp.stderr);
    assert.equal(one(cp.stdout).event, 'done');
    assert.ok(
      lines(cp.stderr).some((l) => l.event === 'round'),
      cp.stderr,
    );
    const ins = await roam(['inspect', file, '--json']);
    assert.equal(ins.code, 0, ins.stderr);
    assert.ok(JSON.parse(ins.stdout));
    const stopped = await roam(['stop', id, '--json']);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(one(stopped.stdout).id, id);
    restored = start(['restore', '--json', file]);
    restored.vmId.catch(() => {});
    await until(() => lines(restored!.stderr()).some((l) => l.event === 'restored'), 'restored');
    const r = lines(restored.stderr()).find((l) => l.event === 'restored')!;
    assert.equal(r.checkpointOf, id);
    await until(() => /tick \d+/.test(restored!.stdout()), 'the restored counter ticking');
  } finally {
    restored?.proc.kill('SIGTERM');
    await roam(['stop', id]);
  }
  assert.equal(fs.existsSync(path.join(dir, 'vm.ckpt')), true);
});

/** Starts a long-running roam command; resolves with its first JSON line on stdout. */
async function serve(args: string[]): Promise<{ r: Running; first: Record<string, unknown> }> {
  const r = start(args);
  r.vmId.catch(() => {});
  let first: Record<string, unknown> | undefined;
  await until(() => {
    const l = r.stdout().split('\n')[0];
    if (r.proc.exitCode !== null) throw new Error(`${args[0]} exited: ${r.stderr()}`);
    if (!r.stdout().includes('\n')) return false;
    first = JSON.parse(l) as Record<string, unknown>;
    return true;
  }, `${args[0]} listening`);
  return { r, first: first! };
}

test('broker, tokens, node and boot: every answer as JSON, a refunded job shows no balance', async () => {
  const dir = tmpdir('cli-json-node');
  const f = (n: string) => path.join(dir, n);
  const b = await serve(['broker', '--db', f('l.db'), '--listen', '127.0.0.1:0', '--json']);
  assert.equal(b.first.event, 'listening');
  assert.equal(b.first.adminKeyCreated, true);
  const url = String(b.first.url);
  const admin = ['--broker', url, '--admin-key', f('l.db.admin')];
  const j = async (args: string[]) => {
    const res = await roam([...args, '--json']);
    assert.equal(res.code, 0, `${args.join(' ')}: ${res.stdout}${res.stderr}`);
    return one(res.stdout);
  };
  assert.equal(
    (await j(['broker', 'enroll-node', ...admin, '--node', 'n1', '-o', f('n1.secret')])).node,
    'n1',
  );
  const cust = ['--customer', 'alice', '--balance', '1000', '-o', f('alice.key')];
  assert.equal((await j(['broker', 'add-customer', ...admin, ...cust])).balance, 1000);
  const me = ['--broker', url, '--customer-key', f('alice.key')];
  const tok = ['--token', f('job.token')];
  const bought = await j([
    'tokens',
    'buy',
    ...me,
    '--node',
    'n1',
    '--count',
    '50',
    '-o',
    f('job.token'),
  ]);
  assert.equal(bought.units, 50);
  assert.equal(bought.key, `${f('job.token')}.key`);
  const node = start([
    'node',
    '--id',
    'n1',
    '--secret-file',
    f('n1.secret'),
    '--listen',
    '127.0.0.1:0',
    '--state',
    f('state'),
    '--warm',
    '1',
  ]);
  node.vmId.catch(() => {});
  try {
    await until(() => /listening on udp:\/\/\S+\n/.test(node.stdout()), 'the node');
    const at = /udp:\/\/(\S+)/.exec(node.stdout())![1];
    const boot = await j(['boot', f('job.token'), '--node', at]);
    assert.equal(boot.event, 'accepted');
    assert.match(String(boot.cstrap), /^127\.0\.0\.1:\d+$/);
    const st = await j(['tokens', 'status', ...tok, '--node', at]);
    assert.equal(st.credited, 50);
    assert.equal(st.closed, false);
    // A top-up's JSON carries the chain element; its plain line does not.
    const up = await roam([
      'tokens',
      'topup',
      ...me,
      ...tok,
      '--count',
      '5',
      '--node',
      at,
      '--json',
    ]);
    assert.equal(up.code, 0, up.stderr);
    const [paid, delivered] = lines(up.stdout);
    assert.match(String(paid.element), /^[0-9a-f]{64}$/);
    assert.equal(delivered.event, 'delivered');
    assert.equal(delivered.credited, 55);
    const refund = await j(['tokens', 'refund', ...me, ...tok, '--node', at]);
    assert.equal(refund.event, 'refunded');
    const after = await j(['tokens', 'status', ...tok, '--node', at]);
    assert.equal(after.closed, true);
    assert.equal(after.balance, null);
    const plain = await roam(['tokens', 'status', ...tok, '--node', at]);
    assert.match(plain.stdout, /closed \(refunded\)/);
    assert.doesNotMatch(plain.stdout, /balance/);
    assert.equal(typeof (await j(['broker', 'balance', ...me])).balance, 'number');
    // A node that refuses: the error as JSON, exit 4 (the peer failed) or 3 (refused).
    const again = await roam(['boot', f('job.token'), '--node', at, '--json']);
    assert.ok(again.code === 3 || again.code === 4, `exit ${again.code}`);
    assert.equal(one(again.stdout).event, 'error');
  } finally {
    node.proc.kill('SIGTERM');
    b.r.proc.kill('SIGTERM');
    await node.exited;
  }
});

test('cstrap reports as JSON lines on stderr; a bad flag is JSON there too', async () => {
  const bad = await roam(['cstrap', '--loader-hash', '00', '--json']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, '');
  assert.match(String(one(bad.stderr).message), /--loader-hash/);
  const c = start(['cstrap', '--listen', '127.0.0.1:0', '--json']);
  c.vmId.catch(() => {});
  try {
    await until(() => lines(c.stderr()).some((l) => l.event === 'listening'), 'listening');
  } finally {
    c.proc.kill('SIGTERM');
  }
});

test('migrate --json: rounds and phases as JSON lines on stderr, the one result on stdout', async () => {
  const vm = start(['run', example('counter'), '100', '50']);
  const id = await vm.vmId;
  const c = start(['cstrap', '--listen', '127.0.0.1:0', '--json']);
  c.vmId.catch(() => {});
  try {
    await until(() => lines(c.stderr()).some((l) => l.event === 'listening'), 'listening');
    const addr = String(lines(c.stderr()).find((l) => l.event === 'listening')!.addr);
    const r = await roam(['migrate', id, '--to', addr, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = one(r.stdout);
    assert.equal(typeof res.downtimeMs, 'number');
    const events = lines(r.stderr).map((l) => l.event);
    assert.ok(events.includes('round'), `rounds on stderr: ${events.join(',')}`);
  } finally {
    c.proc.kill('SIGTERM');
    vm.proc.kill('SIGTERM');
  }
});
