// What agents tell the control service about their node, and what it does with
// it: a booted cstrap, a running VM, a migration done, a job ended, or a job
// lost (its VM gone, or its token no longer usable: a new job replaces it).
import type { Row, Sql } from './store.js';
import type { ControlService, Report } from './service.js';
import { ControlError } from './workload.js';

const str = (v: Row[string]): string => String(v);
const STATES = new Set(['booted', 'running', 'serving', 'migrated', 'ended', 'lost']);

export function checkReports(v: unknown): Report[] {
  const list = (v as { reports?: unknown })?.reports;
  if (!Array.isArray(list) || list.length > 4096)
    throw new ControlError(400, 'bad-report', '{"reports": [{jobId, state, vm?, cstrap?, uri?}]}');
  return list.map((r: Record<string, unknown>) => {
    if (
      typeof r?.jobId !== 'string' ||
      !/^[0-9a-f]{32}$/.test(r.jobId) ||
      !STATES.has(String(r.state))
    )
      throw new ControlError(400, 'bad-report', 'each report: jobId (32 hex digits) and a state');
    const opt = (k: string) => (typeof r[k] === 'string' && r[k].length < 256 ? r[k] : undefined);
    return {
      jobId: r.jobId,
      state: r.state as Report['state'],
      vm: opt('vm'),
      cstrap: opt('cstrap'),
      uri: /^http:\/\/\S+$/.test(opt('uri') ?? '') ? opt('uri') : undefined,
    };
  });
}

/** Apply one node's reports; only rows of that node are touched. */
export async function applyReports(
  svc: ControlService,
  node: string,
  reports: Report[],
): Promise<void> {
  const touched = new Set<string>();
  const lost: Row[] = [];
  await svc.sql.tx(async (q) => {
    for (const r of reports) await one(q, node, r, touched, lost);
    await svc.bump(q, touched);
  });
  await svc.announce(touched);
  for (const j of lost) await replace(svc, j);
}

async function one(
  q: Sql,
  node: string,
  r: Report,
  touched: Set<string>,
  lost: Row[],
): Promise<void> {
  if (r.state === 'ended') {
    await q.run(`DELETE FROM retired WHERE job_id = ? AND node = ?`, [r.jobId, node]);
    const gone = await q.all(`SELECT * FROM jobs WHERE job_id = ? AND node = ?`, [r.jobId, node]);
    lost.push(...gone);
    return;
  }
  if (r.state === 'serving') {
    // The leaving side: its VM serves itself at r.uri; the arriving node is told to pull it.
    const j = await q.all(`SELECT * FROM jobs WHERE from_job = ? AND from_node = ?`, [
      r.jobId,
      node,
    ]);
    if (!j.length || !r.uri) return;
    await q.run(`DELETE FROM pulls WHERE job_id = ?`, [str(j[0].job_id)]);
    await q.run(`INSERT INTO pulls (job_id, uri) VALUES (?, ?)`, [str(j[0].job_id), r.uri]);
    touched.add(str(j[0].node));
    return;
  }
  if (r.state === 'migrated') {
    // The leaving side: its VM has moved to the job that replaced it.
    const j = await q.all(`SELECT * FROM jobs WHERE from_job = ? AND from_node = ?`, [
      r.jobId,
      node,
    ]);
    if (j.length) await finishMove(q, j[0], touched);
    return;
  }
  const rows = await q.all(`SELECT * FROM jobs WHERE job_id = ? AND node = ?`, [r.jobId, node]);
  if (!rows.length) return; // a job this node no longer holds
  const j = rows[0];
  if (r.state === 'lost') return void lost.push(j);
  if (r.state === 'running' && j.from_node !== null) return finishMove(q, j, touched);
  const cstrap = r.cstrap ?? (j.cstrap === null ? null : str(j.cstrap));
  await q.run(`UPDATE jobs SET state = ?, vm = ?, cstrap = ? WHERE job_id = ?`, [
    j.from_node !== null ? 'arriving' : r.state,
    r.vm ?? (j.vm === null ? null : str(j.vm)),
    cstrap,
    r.jobId,
  ]);
  // The cstrap an instance will move into is ready: the leaving node is told where it is.
  if (j.from_node !== null && cstrap !== null && j.cstrap === null) touched.add(str(j.from_node));
}

async function finishMove(q: Sql, j: Row, touched: Set<string>): Promise<void> {
  await q.run(`DELETE FROM pulls WHERE job_id = ?`, [str(j.job_id)]);
  await q.run(
    `INSERT INTO retired (job_id, node, vm_key) VALUES (?, ?, ?) ON CONFLICT (job_id) DO NOTHING`,
    [str(j.from_job), str(j.from_node), str(j.from_key)],
  );
  await q.run(
    `UPDATE jobs SET state = 'running', from_node = NULL, from_job = NULL, from_vm = NULL, from_key = NULL, cstrap = NULL WHERE job_id = ?`,
    [str(j.job_id)],
  );
  touched.add(str(j.node));
  touched.add(str(j.from_node));
}

/** A job that cannot run any more: a new token on the same node, the old job retired. */
async function replace(svc: ControlService, j: Row): Promise<void> {
  const d = await svc.sql.all(
    `SELECT body FROM descriptions WHERE customer = ? AND name = ? AND version = ?`,
    [str(j.customer), str(j.name), Number(j.spec)],
  );
  const w = JSON.parse(str(d[0].body)) as { memoryMiB: number };
  const b = await svc.buy(str(j.customer), str(j.node), w);
  const touched = new Set([str(j.node)]);
  await svc.sql.tx(async (q) => {
    const n = await q.run(
      `UPDATE jobs SET job_id = ?, token = ?, vm_key = ?, state = 'placed', vm = NULL, cstrap = NULL, from_node = NULL, from_job = NULL, from_vm = NULL, from_key = NULL WHERE job_id = ?`,
      [b.jobId, b.token, b.key, str(j.job_id)],
    );
    await q.run(`DELETE FROM pulls WHERE job_id = ?`, [str(j.job_id)]);
    if (n)
      await q.run(
        `INSERT INTO retired (job_id, node, vm_key) VALUES (?, ?, ?) ON CONFLICT (job_id) DO NOTHING`,
        [str(j.job_id), str(j.node), str(j.vm_key)],
      );
    await svc.bump(q, touched);
  });
  await svc.announce(touched);
}
