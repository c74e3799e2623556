// Home's job table: the continuation token is a generation number; a copy of
// the VM that presents an older one (an old checkpoint restored, a source that
// was handed on) is refused, one that lost its WELCOME is still taken.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Jobs } from '../../src/home/jobs.js';
import { HomeLedger } from '../../src/home/ledger.js';

test('continuation tokens: the current generation or a newer one is taken, an older one refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roam-jobs-'));
  const file = path.join(dir, 'home.db');
  const ledger = new HomeLedger(file);
  const jobs = new Jobs(file);
  try {
    jobs.insert({
      ...{ id: 'j0000000001', program: 'p', state: 'booting', node: 'n:1', node_id: 'n' },
      ...{ token: '', vm_key: '00', cstrap: 'c:1', vm_id: 'v', session_key: '11' },
      ...{ tok_cur: '0', tok_prev: null, publish: '[]', memory: 0, units: 1, parent: null },
    });
    const id = 'j0000000001';
    assert.equal(jobs.rotate(id, '0', false), '1');
    assert.equal(jobs.rotate(id, '1', false), '2');
    // A copy restored from a checkpoint taken two sessions ago: refused.
    assert.equal(jobs.rotate(id, '0', false), null);
    // The VM's WELCOME (2) was lost with its session: it says 1 again, and is taken...
    assert.equal(jobs.rotate(id, '1', false), '2');
    // ...but not while a session of the job is up (then it is a stale copy).
    assert.equal(jobs.rotate(id, '1', true), null);
    // A VM one ahead of home (home lost its last write in a crash) is taken.
    assert.equal(jobs.rotate(id, '3', true), '4');
    for (const bad of ['', 'x', '-1', '1e3', '9'.repeat(20)])
      assert.equal(jobs.rotate(id, bad, false), null, bad);
    assert.equal(jobs.rotate('jnope', '9', false), null);
  } finally {
    jobs.close();
    ledger.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
