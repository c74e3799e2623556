// Issue 4 end to end, in real processes as a customer and a host operator would
// run them: a broker, a node daemon that launches VMs, and the customer's CLI.
// Buy a token, boot, upload a program into the cstrap, watch the balance fall,
// top up, let it run out: the VM suspends to disk within the grace period and
// its process is gone; a later top-up revives it with its state intact; refund
// and redeem once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { example, freePort, roam, sleep, start, tmpdir, type Running } from '../helpers.js';

async function serve(args: string[], re: RegExp): Promise<{ r: Running; match: string }> {
  const r = start(args);
  r.vmId.catch(() => {});
  for (let i = 0; i < 300; i++) {
    const m = re.exec(r.stdout() + r.stderr());
    if (m) return { r, match: m[1] };
    await sleep(20);
  }
  throw new Error(`roam ${args[0]} did not start: ${r.stderr()}`);
}

/** One line to the echo server, its answer back. */
function echo(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`${line}\n`));
    let got = '';
    s.on('data', (d) => {
      got += d;
      if (got.includes('\n')) {
        s.end();
        resolve(got.trim());
      }
    });
    s.on('error', reject);
    setTimeout(() => {
      s.destroy();
      reject(new Error(`no echo on ${port}: "${got}"`));
    }, 5000);
  });
}

async function status(token: string, node: string): Promise<{ balance: number; state: string }> {
  const r = await roam(['tokens', 'status', '--token', token, '--node', node]);
  const m = /balance (\d+) .*vm (\w+)/.exec(r.stdout);
  assert.ok(m, `tokens status: ${r.stdout}${r.stderr}`);
  return { balance: Number(m[1]), state: m[2] };
}

async function waitFor(what: string, ms: number, pred: () => Promise<boolean>): Promise<void> {
  const t0 = Date.now();
  while (!(await pred())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(250);
  }
}

test(
  'token to VM to suspend, purge and revival: a program uploaded into a node runs, is metered, suspends when its credit ends and is revived by a top-up',
  { timeout: 240_000 },
  async () => {
    const dir = tmpdir('node-e2e'),
      state = path.join(dir, 'vms'),
      token = path.join(dir, 'job.token');
    const kids: Running[] = [];
    try {
      const b = await serve(
        [
          'broker',
          '--listen',
          '127.0.0.1:0',
          '--db',
          path.join(dir, 'ledger.db'),
          '--chain-length',
          '5000',
        ],
        /listening on (http:\/\/\S+)/,
      );
      kids.push(b.r);
      const url = b.match;
      assert.equal(
        (
          await roam([
            'broker',
            'enroll-node',
            '--broker',
            url,
            '--node',
            'n1',
            '--admin-key',
            path.join(dir, 'ledger.db.admin'),
            '-o',
            path.join(dir, 'n1.secret'),
          ])
        ).code,
        0,
      );
      assert.equal(
        (
          await roam([
            'broker',
            'add-customer',
            '--broker',
            url,
            '--customer',
            'alice',
            '--admin-key',
            path.join(dir, 'ledger.db.admin'),
            '--balance',
            '100000',
            '-o',
            path.join(dir, 'alice.key'),
          ])
        ).code,
        0,
      );
      // Memory is dear here, so that an idle VM (~60 MiB resident) spends tens of units a second.
      const n = await serve(
        [
          'node',
          '--id',
          'n1',
          '--secret-file',
          path.join(dir, 'n1.secret'),
          '--listen',
          '127.0.0.1:0',
          '--state',
          state,
          '--warm',
          '1',
          '--mem-price',
          '400',
          '--grace',
          '8',
          '--retention',
          '120',
        ],
        /listening on udp:\/\/(\S+)/,
      );
      kids.push(n.r);
      const node = n.match;

      const bought = await roam([
        'tokens',
        'buy',
        '--broker',
        url,
        '--customer-key',
        path.join(dir, 'alice.key'),
        '--node',
        'n1',
        '--count',
        '400',
        '-o',
        token,
      ]);
      assert.equal(bought.code, 0, bought.stderr);
      assert.equal(
        fs.statSync(`${token}.key`).mode & 0o777,
        0o600,
        'the VM key is written beside the token',
      );
      const boot = await roam(['boot', token, '--node', node]);
      const addr = /cstrap (\S+)/.exec(boot.stdout)?.[1];
      assert.ok(addr, boot.stdout + boot.stderr);

      // Upload: the program is prepared here and sent as a migration stream; nothing runs here.
      const port = await freePort();
      const up = await roam([
        'run',
        '--to',
        addr,
        '--key',
        `${token}.key`,
        '--tcplisten',
        `127.0.0.1:${port}`,
        example('echo-server'),
      ]);
      assert.equal(up.code, 0, up.stderr);
      assert.match(up.stdout, /uploaded vm \w+ to/);
      assert.equal(
        up.stdout.includes('listening'),
        false,
        'the program did not run on the customer side',
      );
      assert.equal(await echo(port, 'first'), 'echo 1: first');

      // The meter debits what it measures; the balance falls while the VM idles.
      const s1 = await status(token, node);
      await sleep(2500);
      const s2 = await status(token, node);
      assert.ok(s2.balance < s1.balance, `balance fell: ${s1.balance} -> ${s2.balance}`);
      assert.equal(s2.state, 'running');

      // Credit runs out: notice, the VM suspends itself to disk and its process ends, within the grace.
      await waitFor(
        'the VM to suspend',
        60_000,
        async () => (await status(token, node)).state === 'suspended',
      );
      const vmDir = fs
        .readdirSync(state)
        .map((d) => path.join(state, d))
        .find((d) => fs.existsSync(path.join(d, 'suspend.ckpt')));
      assert.ok(vmDir, 'the suspended state is on disk');
      assert.match(
        fs.readFileSync(path.join(vmDir, 'console.log'), 'utf8'),
        /notice from the host \(balance/,
      );
      await assert.rejects(echo(port, 'gone?'), 'nothing listens while suspended');

      // A top-up revives it from its checkpoint: the echo counter carries on.
      const top = await roam([
        'tokens',
        'topup',
        '--broker',
        url,
        '--customer-key',
        path.join(dir, 'alice.key'),
        '--token',
        token,
        '--count',
        '300',
        '--node',
        node,
      ]);
      assert.equal(top.code, 0, top.stderr);
      await waitFor('the VM to be revived', 30_000, async () =>
        echo(port, 'second').then(
          (l) => l === 'echo 2: second',
          () => false,
        ),
      );

      // Refund closes the job and purges the VM; the certificate is redeemed once.
      const refund = await roam([
        'tokens',
        'refund',
        '--broker',
        url,
        '--customer-key',
        path.join(dir, 'alice.key'),
        '--token',
        token,
        '--node',
        node,
        '--certificate-out',
        path.join(dir, 'cert'),
      ]);
      assert.equal(refund.code, 0, refund.stderr);
      assert.match(refund.stdout, /closed: \d+ units refunded/);
      const again = await roam([
        'tokens',
        'redeem',
        '--broker',
        url,
        '--customer-key',
        path.join(dir, 'alice.key'),
        '--certificate',
        path.join(dir, 'cert'),
      ]);
      assert.notEqual(again.code, 0);
      assert.match(again.stderr, /already refunded/);
      await waitFor('the VM folder to be deleted', 10_000, async () => !fs.existsSync(vmDir));
      await assert.rejects(echo(port, 'after refund'));
    } finally {
      for (const k of kids) k.proc.kill('SIGKILL');
      await sleep(200);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
