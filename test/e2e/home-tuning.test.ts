// `roam migrate JOB` takes the same tuning flags as `roam migrate VM`
// (--max-downtime, --max-bandwidth, --no-throttle, --compress, --max-rounds,
// --commit-window): home passes them on to the VM with its command. They used to
// be dropped silently, so a job on a slow link could only try the default budget.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { until } from '../helpers.js';
import { Client, cluster, submit, T } from '../home-fixtures.js';

test(
  'roam migrate JOB passes its tuning to the VM, and refuses what only a VM id takes',
  T,
  async () => {
    const c = await cluster(2);
    try {
      const { job, port } = await submit(c);
      const a = new Client(port, 1);
      const ra = a.run();
      await until(() => a.got > 20, 'first replies');
      const to = c.nodes[1].addr;

      // A key, an arbiter or a pull are home's to choose for a job: a usage error, nothing bought.
      await assert.rejects(c.roam(['migrate', job, '--to', to, '--key', '/dev/null']), (e: Error) =>
        /--key cannot be used with a job id/.test(e.message),
      );

      // A commit window too short for any commit: home aborts it; the VM runs on where it was.
      await assert.rejects(
        c.roam(['migrate', job, '--to', to, '--commit-window', '1ms']),
        (e: Error) => /nothing was lost/.test(e.message),
      );
      const j = JSON.parse(await c.roam(['jobs', '--json'])) as { nodeId: string; state: string };
      assert.equal(j.nodeId, 'n1');
      assert.equal(j.state, 'running');

      // Paced at 40 Mbit/s: the move takes at least its bytes at that rate (pacing never goes faster).
      const r = JSON.parse(
        await c.roam([
          'migrate',
          job,
          '--to',
          to,
          '--max-bandwidth',
          '40Mbit',
          '--max-downtime',
          '2s',
          '--json',
        ]),
      ) as { bytes: number; totalMs: number };
      assert.ok(
        r.totalMs >= 0.8 * ((r.bytes * 8) / 40e6) * 1000,
        `${r.bytes} bytes in ${r.totalMs} ms is faster than 40 Mbit/s`,
      );
      const before = a.got;
      await until(() => a.got > before + 20 || !!a.error, 'replies from n2');
      await ra.stop();
      assert.equal(a.error, null);
      assert.ok(!a.closed, 'the client stayed connected through the abort and the move');

      // The API checks tuning itself (any caller with the credential is not trusted with bad values).
      const st = JSON.parse(fs.readFileSync(c.home.file, 'utf8')) as {
        api: string;
        credential: string;
      };
      const res = await fetch(`${st.api}/v1/jobs/${job}/migrate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${st.credential}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to: c.nodes[0].addr, tuning: { maxRounds: -1 } }),
      });
      assert.equal(res.status, 400);
      assert.match(((await res.json()) as { message: string }).message, /maxRounds/);
    } finally {
      await c.stop();
    }
  },
);
