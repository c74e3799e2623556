// Home's session server and an arriving VM's early HELLO (one naming the
// migration it arrives by): held unanswered until the arbiter has written the
// decision, then WELCOMEd on a commit and REFUSED on an abort; refused at once
// for a migration home never began or of another VM. Real sockets and channels,
// a real SQLite ledger; no VM.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { Arbiter } from '../../src/home/arbiter.js';
import { Jobs, newSecret } from '../../src/home/jobs.js';
import { HomeLedger } from '../../src/home/ledger.js';
import { Sessions } from '../../src/home/sessions.js';
import { connectKeyed } from '../../src/migrate/keyed.js';
import { newMigrationId } from '../../src/migrate/arbiter.js';
import { Home, toJson, type Hello } from '../../src/guest/home-wire.js';
import type { Channel } from '../../src/migrate/channel.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roam-early-hello-'));
const file = path.join(dir, 'home.db');
const ledger = new HomeLedger(file);
const jobs = new Jobs(file);
const arbiter = new Arbiter(ledger);
const job = 'j00000000e1';
const sessionKey = newSecret();
jobs.insert({
  ...{ id: job, program: 'p', state: 'running', node: 'n:1', node_id: 'n1' },
  ...{ token: '', vm_key: newSecret(), cstrap: 'c:1', vm_id: 'vm1', session_key: sessionKey },
  ...{ tok_cur: '3', tok_prev: null, publish: '[]', memory: 0, units: 1, parent: null },
});
const sessions = new Sessions(
  jobs,
  arbiter,
  () => Promise.resolve({ ok: false }),
  () => {},
);
const addr = await sessions.listen('127.0.0.1', 0);
const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
const open: Channel[] = [];
after(() => {
  for (const ch of open) ch.destroy();
  sessions.close();
  arbiter.close();
  jobs.close();
  ledger.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function hello(migration: string, vm = 'vm1'): Promise<Channel> {
  const ch = await connectKeyed('127.0.0.1', port, {
    psk: Buffer.from(sessionKey, 'hex'),
    timeoutMs: 5_000,
  });
  open.push(ch);
  const h: Hello = { job, vm, token: jobs.get(job)!.tok_cur, maxSid: 0, streams: [], migration };
  await ch.send(Home.HELLO, toJson(h));
  return ch;
}

/** The first answer within `ms`, or null (none yet). */
async function answer(ch: Channel, ms: number): Promise<number | null> {
  const m = await ch.next(ms).catch(() => null);
  return m?.type ?? null;
}

test('a HELLO naming a migration home never began, or another VM, is refused at once', async () => {
  assert.equal(await answer(await hello(newMigrationId()), 5_000), Home.REFUSED);
  const id = newMigrationId();
  ledger.begin(id, 'vm1', 'c:2', 30_000);
  assert.equal(await answer(await hello(id, 'someone-else'), 5_000), Home.REFUSED);
  arbiter.decide(id, 'abort', 'test');
});

test('held until the commit is written, then WELCOMEd; the token rotates only then', async () => {
  const id = newMigrationId();
  ledger.begin(id, 'vm1', 'c:2', 30_000);
  const ch = await hello(id);
  const first = ch.next(10_000);
  assert.equal(await Promise.race([first.then(() => 'answered'), sleep(400)]), 'waiting');
  assert.equal(jobs.get(job)!.tok_cur, '3', 'nothing changed while undecided');
  arbiter.decide(id, 'commit', 'test');
  assert.equal((await first)?.type, Home.WELCOME);
  assert.equal(jobs.get(job)!.tok_cur, '4');
});

test('held, then REFUSED when the migration aborts (this copy never runs)', async () => {
  const id = newMigrationId();
  ledger.begin(id, 'vm1', 'c:2', 30_000);
  const ch = await hello(id);
  const first = ch.next(10_000);
  await sleep(200);
  const before = jobs.get(job)!.tok_cur;
  arbiter.decide(id, 'abort', 'test');
  assert.equal((await first)?.type, Home.REFUSED);
  assert.equal(jobs.get(job)!.tok_cur, before);
});

test('a HELLO for a migration decided already is answered by that decision', async () => {
  const id = newMigrationId();
  ledger.begin(id, 'vm1', 'c:2', 30_000);
  arbiter.decide(id, 'abort', 'test');
  assert.equal(await answer(await hello(id), 5_000), Home.REFUSED);
});

const sleep = (ms: number) => new Promise<string>((r) => setTimeout(() => r('waiting'), ms));
