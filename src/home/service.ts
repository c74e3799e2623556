// `roam home`: the customer's side of roam (thesis 8.2). It buys tokens and boots
// empty VMs on nodes, keeps its jobs in SQLite, holds each VM's session (the
// VM calls home), relays the VMs' published ports, arbitrates every migration,
// tops VMs up from the broker when they ask, and finds a VM a new node when its
// node drains. The VMs never hold the customer's broker credential.
import type { BrokerClient } from '../broker/client.js';
import type { Answer, Ask, Result, Tuning } from '../guest/home-wire.js';
import { Arbiter } from './arbiter.js';
import { Jobs, newJobId, newSecret, type JobRow, type Publish } from './jobs.js';
import { HomeLedger, type MigrationRow } from './ledger.js';
import { acquire, ping, refund, status, topUp, type Placement } from './nodes.js';
import { Sessions } from './sessions.js';
import { parseHostPort } from '../util/address.js';
import { RoamError } from '../util/errors.js';
import { decodeBootToken } from '../tokens/boot-token.js';

export interface HomeOptions {
  db: string;
  broker?: BrokerClient;
  /** Nodes a draining VM may be sent to (besides those home has used). */
  nodes?: string[];
  log?: (m: string) => void;
  /** Units bought per top-up a VM asks for. */
  topupUnits?: number;
  /** The address VMs are told to call (default: where home listens). */
  advertise?: string;
}

export interface SubmitRequest {
  program: string;
  node: string;
  publish: Publish[];
  memoryMiB?: number;
  units?: number;
}

/** What `roam submit` needs to build the VM and upload it into the cstrap. */
export interface Submitted {
  job: string;
  cstrap: string;
  key: string;
  session: { home: string; key: string; token: string };
  published: string[];
}

const MIGRATE_TIMEOUT_MS = 120_000;

export class HomeService {
  readonly ledger: HomeLedger;
  readonly jobs: Jobs;
  readonly arbiter: Arbiter;
  readonly sessions: Sessions;
  /** HOST:PORT where VMs call home (sessions and the arbiter share it). */
  addr = '';
  private readonly log: (m: string) => void;
  /** Destinations bought for a job, by cstrap address, until the move commits. */
  private readonly pending = new Map<string, { job: string; p: Placement; fork: boolean }>();
  private readonly published = new Map<string, string[]>();
  /** The migrations home ordered, newest last (for the dashboard). */
  readonly moves: Array<Record<string, unknown>> = [];

  constructor(private readonly o: HomeOptions) {
    this.log = o.log ?? (() => {});
    this.ledger = new HomeLedger(o.db);
    this.jobs = new Jobs(o.db);
    this.arbiter = new Arbiter(this.ledger, this.log, (m) => this.decided(m));
    this.sessions = new Sessions(this.jobs, this.arbiter, (j, a) => this.ask(j, a), this.log);
  }

  async listen(addr: string): Promise<string> {
    const { host, port } = parseHostPort(addr, { allowPortZero: true });
    const bound = await this.sessions.listen(host, port);
    this.addr = this.o.advertise ?? bound;
    // After a restart: the jobs' public ports open again (their clients reconnect).
    for (const j of this.jobs.list()) if (live(j)) await this.publish(j);
    return bound;
  }

  close(): void {
    this.sessions.close();
    this.arbiter.close();
    this.jobs.close();
    this.ledger.close();
  }

  /** Close a job's place on its node and redeem what is left, in the background (best effort). */
  private refundLater(p: Where): void {
    void refund(this.broker(), p).catch(() => 0);
  }

  private broker(): BrokerClient {
    if (!this.o.broker)
      throw new RoamError('no-broker', 'home was started without --broker and --customer-key', {
        kind: 'usage',
      });
    return this.o.broker;
  }

  /** Open the job's public ports; a port 0 becomes the one bound, kept for restarts of home. */
  private async publish(j: JobRow): Promise<string[]> {
    const relay = this.sessions.relay(j.id);
    const bound: Publish[] = [];
    for (const p of JSON.parse(j.publish) as Publish[]) {
      const { host, port } = parseHostPort(p.listen, { allowPortZero: true });
      bound.push({ listen: await relay.publish(host, port, p.guest), guest: p.guest });
    }
    this.jobs.update(j.id, { publish: JSON.stringify(bound) });
    const out = bound.map((p) => `${p.listen}->home:${p.guest}`);
    this.published.set(j.id, out);
    return out;
  }

  /** A new job: a token and an empty VM on `node`, its public ports open. The caller uploads the VM. */
  async submit(r: SubmitRequest): Promise<Submitted> {
    const units = r.units ?? 10_000;
    const p = await acquire(this.broker(), r.node, { units, memoryMiB: r.memoryMiB, ports: 0 });
    const id = newJobId();
    const sessionKey = newSecret();
    const row = this.jobs.insert({
      id,
      program: r.program,
      state: 'booting',
      node: p.node,
      node_id: p.nodeId,
      token: p.token.toString('base64'),
      vm_key: p.key,
      cstrap: p.cstrap,
      vm_id: p.vmId,
      session_key: sessionKey,
      tok_cur: '0',
      tok_prev: null,
      publish: JSON.stringify(r.publish),
      memory: r.memoryMiB ?? 0,
      units,
      parent: null,
    });
    this.sessions.addKey(Buffer.from(sessionKey, 'hex'), id);
    this.sessions.addKey(Buffer.from(p.key, 'hex'), null);
    const published = await this.publish(row);
    this.log(
      `job ${id}: ${r.program} on ${p.nodeId} (${p.cstrap}); published ${published.join(', ') || 'nothing'}`,
    );
    return {
      job: id,
      cstrap: p.cstrap,
      key: p.key,
      session: { home: this.addr, key: sessionKey, token: row.tok_cur },
      published,
    };
  }

  job(id: string): JobRow {
    const j = this.jobs.get(id);
    if (!j)
      throw new RoamError('no-such-job', `no job ${id} at this home (see roam jobs)`, {
        kind: 'usage',
      });
    return j;
  }

  /** What `roam jobs` shows: no secrets. */
  describe(j: JobRow): Record<string, unknown> {
    const relay = this.sessions.relays.get(j.id);
    return {
      job: j.id,
      program: j.program,
      state: j.state,
      node: j.node,
      nodeId: j.node_id,
      vm: j.vm_id,
      published: this.published.get(j.id) ?? [],
      attached: this.sessions.attachedSince(j.id) !== null,
      clients: relay?.open ?? 0,
      relayed: relay?.stats ?? { toVm: 0, fromVm: 0, streams: 0 },
      migrations: j.migrations,
      parent: j.parent,
      lastError: j.last_error,
    };
  }

  /** `describe` with each live job's balance on its node (asked now; null if the node does not answer). */
  async describeAll(): Promise<Array<Record<string, unknown>>> {
    return Promise.all(
      this.jobs.list().map(async (j) => ({
        ...this.describe(j),
        balance: live(j) ? await status(where(j)).catch(() => null) : null,
      })),
    );
  }

  /** The nodes home knows (given, or used by a job): each one's id and free memory, asked now. */
  async nodes(): Promise<Array<Record<string, unknown>>> {
    const all = new Set([...(this.o.nodes ?? []), ...this.jobs.list().map((j) => j.node)]);
    return Promise.all(
      [...all].map(async (node) => {
        const pong = await ping(node).catch(() => null);
        const jobs = this.jobs.list().filter((j) => j.node === node && live(j)).length;
        return { node, nodeId: pong?.nodeId ?? null, freeMiB: pong?.freeMiB ?? null, jobs };
      }),
    );
  }

  /** Buy a place on `node` for the job and hold it until the move commits. */
  private async destination(j: JobRow, node: string, fork: boolean): Promise<Placement> {
    if (!fork && node === j.node)
      throw new RoamError('same-node', `job ${j.id} runs on ${node} already`, { kind: 'usage' });
    const p = await acquire(this.broker(), node, {
      units: j.units,
      memoryMiB: j.memory || undefined,
      ports: 0,
    });
    this.sessions.addKey(Buffer.from(p.key, 'hex'), null);
    this.pending.set(p.cstrap, { job: j.id, p, fork });
    return p;
  }

  /** `roam migrate JOB --to NODE` (or fork): the VM moves itself, home arbitrates. */
  async migrate(
    id: string,
    node: string,
    fork = false,
    tuning?: Tuning,
  ): Promise<Record<string, unknown>> {
    const j = this.job(id);
    if (!live(j))
      throw new RoamError('not-running', `job ${id} is ${j.state}`, { kind: 'refused' });
    const p = await this.destination(j, node, fork);
    if (!fork) this.jobs.update(id, { state: 'migrating' });
    const r = await this.sessions
      .command(
        id,
        { op: fork ? 'fork' : 'migrate', to: p.cstrap, key: p.key, arbiter: this.addr, tuning },
        MIGRATE_TIMEOUT_MS,
      )
      .catch((err: Error): Result => ({ id: 0, ok: false, error: err.message }));
    if (!r.ok) {
      this.pending.delete(p.cstrap);
      const now = this.jobs.get(id)!;
      if (now.cstrap !== p.cstrap)
        this.jobs.update(id, { state: 'running', last_error: r.error ?? 'failed' });
      this.refundLater(p);
      throw new RoamError(
        'migrate-failed',
        `${fork ? 'fork' : 'migration'} of job ${id} failed: ${r.error}`,
        {
          kind: 'peer',
        },
      );
    }
    const child = fork ? this.forked(j, p, r.result?.vmId) : this.moved(id, p);
    this.moves.push({ at: Date.now(), job: id, node: p.nodeId, fork, ...r.result });
    if (this.moves.length > 200) this.moves.shift();
    return { job: id, node, ...(child ? { child } : {}), ...r.result };
  }

  /** Home's ledger committed a migration: if it was one of ours, the job is where it went. */
  private decided(m: MigrationRow): void {
    const mv = this.pending.get(m.dest);
    if (!mv || m.decision !== 'commit' || mv.fork) return;
    this.moved(mv.job, mv.p);
  }

  private moved(id: string, p: Placement): undefined {
    this.pending.delete(p.cstrap);
    const j = this.jobs.get(id);
    if (!j || j.cstrap === p.cstrap) return;
    this.jobs.update(id, {
      state: 'running',
      node: p.node,
      node_id: p.nodeId,
      token: p.token.toString('base64'),
      vm_key: p.key,
      cstrap: p.cstrap,
      migrations: j.migrations + 1,
      last_error: null,
    });
    this.log(`job ${id}: now on ${p.nodeId} (${p.cstrap})`);
    // The copy on the old node has ended (or ends in a moment): its unspent units come back.
    const old = where(j);
    setTimeout(() => this.refundLater(old), 2_000).unref();
    return undefined;
  }

  /** A fork's child is a job of its own, without a session (it does not call home). */
  private forked(parent: JobRow, p: Placement, vmId: unknown): string {
    this.pending.delete(p.cstrap);
    const id = newJobId();
    this.jobs.insert({
      ...parent,
      id,
      state: 'running',
      node: p.node,
      node_id: p.nodeId,
      token: p.token.toString('base64'),
      vm_key: p.key,
      cstrap: p.cstrap,
      vm_id: typeof vmId === 'string' ? vmId : '?',
      session_key: newSecret(),
      tok_cur: '0',
      tok_prev: null,
      publish: '[]',
      parent: parent.id,
    });
    return id;
  }

  /** `roam stop JOB`: the VM ends; what is left of its token is refunded. */
  async stop(id: string): Promise<Record<string, unknown>> {
    const j = this.job(id);
    if (j.state === 'stopped') return { job: id, state: 'stopped' };
    const told = await this.sessions.command(id, { op: 'stop' }, 10_000).then(
      (r) => r.ok,
      () => false,
    );
    this.jobs.update(id, { state: 'stopped' });
    this.sessions.relays.get(id)?.close();
    const refunded = await new Promise<number>((res) => setTimeout(res, told ? 300 : 0))
      .then(() => refund(this.broker(), where(j)))
      .catch(() => 0);
    return { job: id, state: 'stopped', told, refunded };
  }

  /** A VM calls home: it needs credit, or its node is going and it needs another. */
  private async ask(id: string, a: Ask): Promise<Omit<Answer, 'id'>> {
    const j = this.job(id);
    if (a.op === 'topup') {
      // A VM may not spend its customer's money at will: only when its node says it is out.
      const now = await status(where(j));
      if (now > Math.max(1, Math.floor(j.units / 10)))
        return { ok: false, error: `its balance on ${j.node_id} is ${now}: no top-up needed` };
      const balance = await topUp(this.broker(), where(j), this.o.topupUnits ?? j.units);
      this.log(`job ${id}: topped up on ${j.node_id} (balance ${balance})`);
      return { ok: true };
    }
    // The VM asks again only after its last try failed: that place is not needed any more.
    for (const [cstrap, mv] of this.pending)
      if (mv.job === id && !mv.fork) {
        this.pending.delete(cstrap);
        this.refundLater(mv.p);
      }
    const known = new Set([...(this.o.nodes ?? []), ...this.jobs.list().map((x) => x.node)]);
    known.delete(j.node);
    for (const node of known) {
      try {
        const p = await this.destination(j, node, false);
        this.jobs.update(id, { state: 'migrating' });
        this.log(
          `job ${id}: its node ${j.node_id} is going (${a.reason}); sending it to ${p.nodeId}`,
        );
        return { ok: true, to: p.cstrap, key: p.key, arbiter: this.addr };
      } catch (err) {
        this.log(`job ${id}: node ${node} cannot take it: ${(err as Error).message}`);
      }
    }
    return { ok: false, error: 'no other node can take it' };
  }
}

const live = (j: JobRow): boolean =>
  j.state === 'running' || j.state === 'booting' || j.state === 'migrating';

type Where = { node: string; tokenJob: string; key: string };

/** Where the job holds its token now: the node, the token's job id and key (for node requests). */
const where = (j: JobRow): Where => ({ node: j.node, tokenJob: tokenJob(j), key: j.vm_key });

/** The broker's job id of the token the job holds now. */
function tokenJob(j: JobRow): string {
  const t = decodeBootToken(Buffer.from(j.token, 'base64'));
  if (!t.ok) throw new Error(`job ${j.id}: its boot token does not decode (${t.reason})`);
  return t.value.jobId.toString('hex');
}
