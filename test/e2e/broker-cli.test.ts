// The CLI end to end in real processes: roam broker, enroll-node, add-customer,
// tokens buy, roam node and roam boot (the daemon hands out a warm cstrap).
// The rest of a job's life is in node-lifecycle.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { decodeBootToken } from '../../src/tokens/boot-token.js';
import { track } from '../helpers.js';

const ROAM = resolve(fileURLToPath(import.meta.url), '../../../../bin/roam.js');

function roam(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return promisify(execFile)(process.execPath, [ROAM, ...args]).then(
    ({ stdout, stderr }) => ({ code: 0, out: stdout, err: stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({
      code: e.code,
      out: e.stdout,
      err: e.stderr,
    }),
  );
}

// Starts a long-running roam command and resolves with the first match of `re` in its output.
function serve(args: string[], re: RegExp): Promise<{ child: ChildProcess; match: string }> {
  const child = track(spawn(process.execPath, [ROAM, ...args]));
  let out = '';
  return new Promise((ok, fail) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = re.exec(out);
      if (m) ok({ child, match: m[1] });
    });
    child.stderr!.on('data', (d) => {
      out += d;
    });
    child.on('exit', (c) => fail(new Error(`roam ${args[0]} exited ${c}: ${out}`)));
  });
}

test('roam broker, tokens buy, roam node and roam boot', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'roam-cli-'));
  const children: ChildProcess[] = [];
  try {
    const b = await serve(
      [
        'broker',
        '--listen',
        '127.0.0.1:0',
        '--db',
        join(dir, 'ledger.db'),
        '--chain-length',
        '100',
      ],
      /listening on (http:\/\/\S+)/,
    );
    children.push(b.child);
    const url = b.match;
    const enrolled = await roam([
      'broker',
      'enroll-node',
      '--broker',
      url,
      '--node',
      'n1',
      '--admin-key',
      join(dir, 'ledger.db.admin'),
      '--price',
      '2',
      '-o',
      join(dir, 'n1.secret'),
    ]);
    assert.equal(enrolled.code, 0, enrolled.err);
    assert.equal(statSync(join(dir, 'n1.secret')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'ledger.db.admin')).mode & 0o777, 0o600);
    assert.match(
      (
        await roam([
          'broker',
          'enroll-node',
          '--broker',
          url,
          '--admin-key',
          join(dir, 'ledger.db.admin'),
          '--node',
          'n2',
        ])
      ).out,
      /^[0-9a-f]{64}\n$/,
      'printed once',
    );
    assert.match(
      (
        await roam([
          'broker',
          'enroll-node',
          '--broker',
          url,
          '--admin-key',
          join(dir, 'ledger.db.admin'),
          '--node',
          'n1',
        ])
      ).err,
      /already enrolled/,
    );
    assert.match(
      (
        await roam([
          'broker',
          'add-customer',
          '--broker',
          url,
          '--admin-key',
          join(dir, 'ledger.db.admin'),
          '--customer',
          'alice',
          '--balance',
          '100',
          '-o',
          join(dir, 'alice.key'),
        ])
      ).err,
      /balance 100/,
    );
    const bought = await roam([
      'tokens',
      'buy',
      '--broker',
      url,
      '--customer-key',
      join(dir, 'alice.key'),
      '--node',
      'n1',
      '--count',
      '10',
      '-o',
      join(dir, 't.tok'),
    ]);
    assert.equal(bought.code, 0, bought.err);
    assert.match(bought.out, /10 units for 20.*balance 80/);
    assert.ok(decodeBootToken(readFileSync(join(dir, 't.tok'))).ok);
    assert.match(
      (
        await roam([
          'tokens',
          'buy',
          '--broker',
          url,
          '--customer-key',
          join(dir, 'alice.key'),
          '--node',
          'n1',
          '--count',
          '1000',
          '-o',
          join(dir, 'x'),
        ])
      ).err,
      /insufficient|count/,
    );

    const n = await serve(
      [
        'node',
        '--id',
        'n1',
        '--secret-file',
        join(dir, 'n1.secret'),
        '--listen',
        '127.0.0.1:0',
        '--state',
        join(dir, 'vms'),
        '--warm',
        '1',
      ],
      /listening on udp:\/\/(\S+)/,
    );
    children.push(n.child);
    assert.match(
      (await roam(['tokens', 'status', '--token', join(dir, 't.tok'), '--node', n.match])).err,
      /node refused: unknown-job/,
    );
    const boot = await roam(['boot', join(dir, 't.tok'), '--node', n.match]);
    assert.equal(boot.code, 0, boot.err);
    assert.match(
      boot.out,
      /accepted: job [0-9a-f]{32} vm vm-[0-9a-f]+ cstrap 127\.0\.0\.1:\d+ balance 10/,
    );
    assert.match(
      (await roam(['boot', join(dir, 't.tok'), '--node', n.match])).err,
      /node refused: replayed/,
    );
    const status = await roam([
      'tokens',
      'status',
      '--token',
      join(dir, 't.tok'),
      '--node',
      n.match,
    ]);
    assert.match(status.out, /credited 10.*vm running/);
    assert.match((await roam(['node', '--help'])).out, /--warm <n>/);
    const silent = await roam([
      'boot',
      join(dir, 't.tok'),
      '--node',
      '127.0.0.1:9',
      '--timeout',
      '50',
      '--retries',
      '1',
    ]);
    assert.match(silent.err, /no answer/);
    assert.match((await roam(['boot', '--help'])).out, /--node <host:port>/);
    assert.match(
      (await roam(['boot', join(dir, 'n1.secret'), '--node', n.match])).err,
      /not a boot token/,
    );
  } finally {
    for (const c of children) c.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
