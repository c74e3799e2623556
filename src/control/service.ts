// The job-control service (thesis 8.3.2, Figure 8.7): it keeps the customers'
// workload descriptions and the jobs that carry them out, and derives from them
// the one description each node caches. Every change to a node's description
// bumps its version and rotates its Pulse secret: the old s is released to the
// rendezvous servers, which tells the node's agent to fetch the new one.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { BrokerClient } from '../broker/client.js';
import { H } from '../pulse/wire.js';
import { release } from '../pulse/client.js';
import type { Row, Sql } from './store.js';
import { checkWorkload, ControlError, place, portsOf, specOf, type Workload } from './workload.js';

export interface ServiceOptions {
  broker: BrokerClient;
  rendezvous: string[];
  /** Units bought with each boot token, and its lifetime on the node. */
  units?: number;
  lifetimeS?: number;
  /** The loader every token pins (the cstrap refuses any other): this roam's. */
  loaderSha256?: string;
  /** Called as soon as a change to these nodes' descriptions is committed (before Pulse announces it). */
  onCommit?: (nodes: string[]) => void;
  log?: (m: string) => void;
}

export type InstanceView =
  | {
      id: string;
      role: 'run' | 'arrive';
      jobId: string;
      token: string;
      key: string;
      programs: Workload['programs'];
      memoryMiB: number;
      tcplisten: string[];
      state: string;
      vm: string | null;
      cstrap: string | null;
      /** Arriving: the boot URI its VM serves itself at, once the leaving node said so. */
      from?: string | null;
    }
  | { id: string; role: 'leave'; jobId: string; vm: string | null; to: string | null; key: string };

export interface NodeView {
  node: string;
  version: number;
  instances: InstanceView[];
  /** Jobs to end on this node, with their keys (the daemon wants a request MAC under each). */
  retire: Array<{ jobId: string; key: string }>;
}

export interface Report {
  jobId: string;
  state: 'booted' | 'running' | 'serving' | 'migrated' | 'ended' | 'lost';
  vm?: string;
  cstrap?: string;
  /** serving: the leaving VM's boot URI, for the arriving node to pull from. */
  uri?: string;
}

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
const str = (v: Row[string]): string => String(v);
const NAME = /^[A-Za-z0-9._-]{1,64}$/;

export class ControlService {
  constructor(
    readonly sql: Sql,
    private readonly o: ServiceOptions,
  ) {}

  get rendezvous(): string[] {
    return this.o.rendezvous;
  }

  /** The admin key, made on first use (only its hash is kept): prints once. */
  async adminKey(): Promise<string | null> {
    const have = await this.sql.all(`SELECT v FROM meta WHERE k = 'admin'`);
    if (have.length) return null;
    const key = randomBytes(32).toString('hex');
    await this.sql.run(`INSERT INTO meta (k, v) VALUES ('admin', ?)`, [sha(key)]);
    return key;
  }

  async auth(kind: 'admin' | 'customer' | 'node', key: string | undefined): Promise<string> {
    const h = sha(key ?? '');
    const rows =
      kind === 'admin'
        ? await this.sql.all(`SELECT 'admin' AS id, v AS h FROM meta WHERE k = 'admin'`)
        : await this.sql.all(`SELECT id, key_hash AS h FROM ${kind}s WHERE key_hash = ?`, [h]);
    const hit = rows.find((r) => timingSafeEqual(Buffer.from(str(r.h)), Buffer.from(h)));
    if (!key || !hit)
      throw new ControlError(
        401,
        'unauthorized',
        `a valid ${kind} key is required (Authorization: Bearer KEY)`,
      );
    return str(hit.id);
  }

  async addCustomer(id: string): Promise<{ id: string; key: string }> {
    return this.addPrincipal('customers', id);
  }

  async addNode(id: string): Promise<{ id: string; key: string }> {
    return this.addPrincipal('nodes', id);
  }

  private async addPrincipal(table: 'customers' | 'nodes', id: string) {
    if (!NAME.test(id)) throw new ControlError(400, 'bad-id', 'ids are 1-64 of A-Z a-z 0-9 . _ -');
    const key = randomBytes(32).toString('hex');
    const extra = table === 'nodes' ? `, version, secret) VALUES (?, ?, 1, ?)` : `) VALUES (?, ?)`;
    const params =
      table === 'nodes' ? [id, sha(key), randomBytes(32).toString('hex')] : [id, sha(key)];
    try {
      await this.sql.run(`INSERT INTO ${table} (id, key_hash${extra}`, params);
    } catch {
      throw new ControlError(409, 'exists', `${table.slice(0, -1)} ${id} exists already`);
    }
    return { id, key };
  }

  async putProgram(bytes: Buffer): Promise<{ sha256: string; bytes: number }> {
    if (bytes.length < 8 || bytes.readUInt32BE(0) !== 0x0061736d)
      throw new ControlError(400, 'not-wasm', 'a program is a WebAssembly module (\\0asm...)');
    const h = sha(bytes);
    await this.sql.run(
      `INSERT INTO programs (sha256, data) VALUES (?, ?) ON CONFLICT (sha256) DO NOTHING`,
      [h, bytes.toString('base64')],
    );
    return { sha256: h, bytes: bytes.length };
  }

  async program(h: string): Promise<Buffer> {
    const r = await this.sql.all(`SELECT data FROM programs WHERE sha256 = ?`, [h]);
    if (!r.length) throw new ControlError(404, 'no-program', `no program ${h}`);
    return Buffer.from(str(r[0].data), 'base64');
  }

  /** A token for a new job of `customer` on `node`, from the broker. */
  async buy(customer: string, node: string, w: Pick<Workload, 'memoryMiB'>) {
    void customer; // every token is bought on the service's own broker account (--broker-key)
    const b = await this.o.broker.buy({
      node,
      count: this.o.units ?? 1000,
      memoryMiB: w.memoryMiB,
      lifetimeS: this.o.lifetimeS ?? 86_400,
      ttlS: 86_400,
      loaderSha256: this.o.loaderSha256,
    });
    return { jobId: b.jobId, token: b.token.toString('base64'), key: b.key };
  }

  /** Keep a new description and change the jobs to match it. */
  async submit(customer: string, body: unknown): Promise<{ version: number; nodes: string[] }> {
    const w = checkWorkload(body);
    for (const p of w.programs)
      if (!(await this.sql.all(`SELECT 1 FROM programs WHERE sha256 = ?`, [p.sha256])).length)
        throw new ControlError(400, 'no-program', `program ${p.sha256} has not been uploaded`);
    const known = new Set((await this.sql.all(`SELECT id FROM nodes`)).map((r) => str(r.id)));
    for (const n of w.placement.nodes)
      if (!known.has(n)) throw new ControlError(400, 'no-node', `node ${n} is not enrolled`);
    const { plan, version } = await this.plan(customer, w);
    // Tokens are bought before the transaction (the broker is another service); a
    // description refused below wastes them, which costs money but breaks nothing.
    const bought = new Map<number, Awaited<ReturnType<ControlService['buy']>>>();
    for (const [i, step] of plan)
      if (step.buy) bought.set(i, await this.buy(customer, step.node, w));
    const touched = new Set<string>();
    await this.sql.tx(async (q) => {
      const cur = await q.all(`SELECT version FROM workloads WHERE customer = ? AND name = ?`, [
        customer,
        w.name,
      ]);
      if ((cur.length ? Number(cur[0].version) : 0) >= version)
        throw new ControlError(
          409,
          'stale-version',
          `version ${version} is not newer than the current one`,
        );
      const text = JSON.stringify({ ...w, version });
      await q.run(
        `INSERT INTO descriptions (customer, name, version, body, at) VALUES (?, ?, ?, ?, ?)`,
        [customer, w.name, version, text, Date.now()],
      );
      await q.run(
        cur.length
          ? `UPDATE workloads SET version = ? WHERE customer = ? AND name = ?`
          : `INSERT INTO workloads (version, customer, name) VALUES (?, ?, ?)`,
        [version, customer, w.name],
      );
      for (const [i, step] of plan)
        await this.apply(q, customer, w, version, i, step, bought.get(i), touched);
      await this.bump(q, touched);
    });
    await this.announce(touched);
    return { version, nodes: [...touched].map((t) => t.split(' ')[0]) };
  }

  /** What happens to each instance: kept, moved (migrated), replaced, created, or removed. */
  private async plan(customer: string, w: Workload) {
    const cur = await this.sql.all(
      `SELECT w.version, d.body FROM workloads w JOIN descriptions d ON d.customer = w.customer AND d.name = w.name AND d.version = w.version WHERE w.customer = ? AND w.name = ?`,
      [customer, w.name],
    );
    const prev = cur.length ? (JSON.parse(str(cur[0].body)) as Workload) : null;
    const version = w.version ?? (prev?.version ?? 0) + 1;
    const jobs = await this.sql.all(`SELECT * FROM jobs WHERE customer = ? AND name = ?`, [
      customer,
      w.name,
    ]);
    const byIdx = new Map(jobs.map((j) => [Number(j.idx), j]));
    const sameSpec = prev !== null && specOf(prev) === specOf(w);
    // A moving instance counts where it is going; a replaced one is placed afresh.
    const current = new Map(sameSpec ? jobs.map((j) => [Number(j.idx), str(j.node)]) : []);
    const where = place(w.instances, w.placement.nodes, current);
    type Step = { node: string; buy: boolean; op: 'keep' | 'move' | 'new' | 'remove'; job?: Row };
    const plan = new Map<number, Step>();
    for (const [i, node] of where) {
      const j = byIdx.get(i);
      if (j && sameSpec && str(j.node) === node)
        plan.set(i, { node, buy: false, op: 'keep', job: j });
      else if (j && sameSpec && str(j.state) === 'running' && j.from_node === null)
        plan.set(i, { node, buy: true, op: 'move', job: j });
      else plan.set(i, { node, buy: true, op: 'new', job: j });
    }
    for (const [i, j] of byIdx)
      if (!where.has(i)) plan.set(i, { node: str(j.node), buy: false, op: 'remove', job: j });
    return { plan, version };
  }

  private async apply(
    q: Sql,
    customer: string,
    w: Workload,
    version: number,
    i: number,
    step: { node: string; op: string; job?: Row },
    b: { jobId: string; token: string; key: string } | undefined,
    touched: Set<string>,
  ): Promise<void> {
    const j = step.job;
    if (step.op === 'keep') {
      await q.run(`UPDATE jobs SET spec = ? WHERE customer = ? AND name = ? AND idx = ?`, [
        version,
        customer,
        w.name,
        i,
      ]);
      return;
    }
    if (j) {
      touched.add(str(j.node));
      // A job that will not move with its instance is ended; one being left by a migration ends when it is done.
      if (step.op !== 'move')
        await q.run(
          `INSERT INTO retired (job_id, node, vm_key) VALUES (?, ?, ?) ON CONFLICT (job_id) DO NOTHING`,
          [str(j.job_id), str(j.node), str(j.vm_key)],
        );
      if (j.from_job !== null)
        await q.run(
          `INSERT INTO retired (job_id, node, vm_key) VALUES (?, ?, ?) ON CONFLICT (job_id) DO NOTHING`,
          [str(j.from_job), str(j.from_node), str(j.from_key)],
        );
      await q.run(`DELETE FROM jobs WHERE customer = ? AND name = ? AND idx = ?`, [
        customer,
        w.name,
        i,
      ]);
    }
    if (step.op === 'remove' || !b) return;
    touched.add(step.node);
    const move = step.op === 'move' && j;
    await q.run(
      `INSERT INTO jobs (customer, name, idx, spec, node, job_id, token, vm_key, state, from_node, from_job, from_vm, from_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        customer,
        w.name,
        i,
        version,
        step.node,
        b.jobId,
        b.token,
        b.key,
        move ? 'arriving' : 'placed',
        move ? str(j.node) : null,
        move ? str(j.job_id) : null,
        move && j.vm !== null ? str(j.vm) : null,
        move ? str(j.vm_key) : null,
      ],
    );
  }

  /** New versions and Pulse secrets for these nodes; the old secrets are released after the commit. */
  private readonly pending = new Map<string, string>();
  async bump(q: Sql, nodes: Set<string>): Promise<void> {
    for (const n of nodes) {
      const r = await q.all(`SELECT secret FROM nodes WHERE id = ?`, [n]);
      if (!r.length) continue;
      this.pending.set(n, str(r[0].secret));
      await q.run(`UPDATE nodes SET version = version + 1, secret = ? WHERE id = ?`, [
        randomBytes(32).toString('hex'),
        n,
      ]);
    }
  }

  async announce(nodes: Set<string>): Promise<void> {
    if (nodes.size) this.o.onCommit?.([...nodes]);
    const secrets = [...nodes].map((n) => this.pending.get(n)).filter((s): s is string => !!s);
    for (const n of nodes) this.pending.delete(n);
    if (!this.o.rendezvous.length) return;
    await Promise.all(
      secrets.map((s) =>
        release(Buffer.from(s, 'hex'), this.o.rendezvous).then((r) => {
          if (Object.values(r).every((x) => x === null))
            this.o.log?.('pulse: no rendezvous server answered a release; agents will poll');
        }),
      ),
    );
  }

  async nodeView(node: string): Promise<NodeView & { h: string }> {
    const n = await this.sql.all(`SELECT version, secret FROM nodes WHERE id = ?`, [node]);
    if (!n.length) throw new ControlError(404, 'no-node', `no node ${node}`);
    const jobs = await this.sql.all(
      `SELECT j.*, d.body, p.uri AS pull_uri FROM jobs j JOIN descriptions d ON d.customer = j.customer AND d.name = j.name AND d.version = j.spec LEFT JOIN pulls p ON p.job_id = j.job_id WHERE j.node = ? OR j.from_node = ? ORDER BY j.customer, j.name, j.idx`,
      [node, node],
    );
    const instances: InstanceView[] = jobs.map((j): InstanceView => {
      const id = `${str(j.customer)}/${str(j.name)}/${Number(j.idx)}`;
      if (str(j.node) !== node)
        return {
          id,
          role: 'leave',
          jobId: str(j.from_job),
          vm: j.from_vm === null ? null : str(j.from_vm),
          to: j.cstrap === null ? null : str(j.cstrap),
          key: str(j.vm_key),
        };
      const w = JSON.parse(str(j.body)) as Workload;
      return {
        id,
        role: j.from_node === null ? 'run' : 'arrive',
        jobId: str(j.job_id),
        token: str(j.token),
        key: str(j.vm_key),
        programs: w.programs,
        memoryMiB: w.memoryMiB,
        tcplisten: portsOf(w, Number(j.idx)),
        state: str(j.state),
        vm: j.vm === null ? null : str(j.vm),
        cstrap: j.cstrap === null ? null : str(j.cstrap),
        from: j.pull_uri === null || j.pull_uri === undefined ? null : str(j.pull_uri),
      };
    });
    const retire = (
      await this.sql.all(`SELECT job_id, vm_key FROM retired WHERE node = ? ORDER BY job_id`, [
        node,
      ])
    ).map((r) => ({ jobId: str(r.job_id), key: str(r.vm_key) }));
    return {
      node,
      version: Number(n[0].version),
      instances,
      retire,
      h: H(Buffer.from(str(n[0].secret), 'hex')).toString('hex'),
    };
  }
}
