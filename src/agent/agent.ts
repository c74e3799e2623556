// `roam agent` (thesis 8.3.2): on each node, it pulls the node's workload
// description from the control service, watches for its next change with Pulse
// (the H(s) that came with it, at the rendezvous servers named beside it), and
// makes the node match it through the node's ordinary doors. It only ever
// connects out. Everything it knows is soft state: the description is cached on
// disk for speed, and a restarted agent rebuilds the rest by asking the daemon
// about each job and looking into each VM's folder.
import fs from 'node:fs';
import path from 'node:path';
import { ControlClient, type Fetched } from '../control/client.js';
import type { InstanceView, NodeView, Report } from '../control/service.js';
import { Subscriber } from '../pulse/client.js';
import { NodeDoor } from './node.js';

export interface AgentOptions {
  control: string;
  /** This node's key at the control service. */
  key: string;
  daemon: string;
  stateDir: string;
  cacheDir: string;
  /** Slow poll, covering lost Pulse datagrams (default 60 s). */
  pollMs?: number;
  /** Pulse renewal (default 30 s). */
  renewMs?: number;
  /** Drop this share of incoming Pulse datagrams (tests and benches of the fallback). */
  lossRate?: number;
  /** No Pulse at all: poll only (the bench's peer). */
  noPulse?: boolean;
  log?: (m: string) => void;
}

type Run = Extract<InstanceView, { role: 'run' | 'arrive' }>;
type Leave = Extract<InstanceView, { role: 'leave' }>;

export interface AgentStats {
  fetches: number;
  notModified: number;
  events: number;
  reconciles: number;
  /** When each version was first seen (ms since the epoch), for the bench. */
  seen: Record<number, number>;
}

export class Agent {
  private readonly client: ControlClient;
  private readonly door: NodeDoor;
  private readonly sub: Subscriber | null;
  private view: NodeView | null = null;
  private h = '';
  private timer: NodeJS.Timeout | undefined;
  private busy: Promise<void> | null = null;
  private again = false;
  private closed = false;
  readonly stats: AgentStats = { fetches: 0, notModified: 0, events: 0, reconciles: 0, seen: {} };
  private readonly cacheFile: string;
  /** Boot URIs this agent's cstraps are pulling from now. */
  private readonly pulling = new Set<string>();
  /** What this agent did since it started, ahead of the description (which a report does not re-version). */
  private readonly local = new Map<string, { vm?: string; cstrap?: string; state: string }>();

  constructor(private readonly o: AgentOptions) {
    this.client = new ControlClient(o.control, o.key);
    this.door = new NodeDoor(o.daemon, o.stateDir, o.cacheDir);
    this.cacheFile = path.join(o.cacheDir, 'description.json');
    this.sub = o.noPulse ? null : new Subscriber({ renewMs: o.renewMs, lossRate: o.lossRate });
    this.sub?.on('event', () => {
      this.stats.events++;
      this.kick();
    });
    try {
      this.view = JSON.parse(fs.readFileSync(this.cacheFile, 'utf8')) as NodeView;
    } catch {
      /* no cache yet: everything comes from the control service */
    }
  }

  start(): void {
    this.kick();
    this.timer = setInterval(() => this.kick(), this.o.pollMs ?? 60_000);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.sub?.close();
  }

  get version(): number {
    return this.view?.version ?? 0;
  }

  /** Fetch and reconcile now (one at a time; a kick during a run runs once more after it). */
  kick(): void {
    if (this.closed) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = this.cycle()
      .catch((e: Error) => this.o.log?.(`agent: ${e.message}`))
      .finally(() => {
        this.busy = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async cycle(): Promise<void> {
    this.stats.fetches++;
    // A cached description is revalidated, not trusted: the ETag makes an unchanged one cost a 304.
    const f: Fetched | null = await this.client.node(this.h ? this.view?.version : undefined);
    if (f) this.adopt(f);
    else this.stats.notModified++;
    if (!this.view) return;
    const reports = await this.reconcile(this.view);
    for (const r of reports) this.local.set(r.jobId, { ...this.local.get(r.jobId), ...r });
    if (reports.length) {
      await this.client.report(reports);
      // What was reported may change the description (a move's other half): look again soon.
      setTimeout(() => this.kick(), 200).unref();
    }
  }

  private adopt(f: Fetched): void {
    if (this.view?.version !== f.view.version) {
      this.stats.seen[f.view.version] ??= Date.now();
      this.o.log?.(
        `agent: description version ${f.view.version} (${f.view.instances.length} instances)`,
      );
    }
    this.view = f.view;
    fs.writeFileSync(`${this.cacheFile}.tmp`, JSON.stringify(f.view));
    fs.renameSync(`${this.cacheFile}.tmp`, this.cacheFile);
    if (f.h !== this.h && /^[0-9a-f]{64}$/.test(f.h)) {
      if (this.h) this.sub?.unwatch(Buffer.from(this.h, 'hex'));
      this.h = f.h;
      if (f.rendezvous.length) this.sub?.watch(Buffer.from(f.h, 'hex'), f.rendezvous);
    }
  }

  /** One pass over the description; what changed is reported. */
  private async reconcile(v: NodeView): Promise<Report[]> {
    this.stats.reconciles++;
    const out: Report[] = [];
    const step = async (what: string, fn: () => Promise<Report | null>) => {
      try {
        const r = await fn();
        if (r) out.push(r);
      } catch (e) {
        this.o.log?.(`agent: ${what}: ${(e as Error).message}`);
      }
    };
    for (const job of v.retire) await step(`retire ${job.jobId}`, () => this.retire(job));
    for (const i of v.instances)
      await step(`${i.role} ${i.id}`, () => (i.role === 'leave' ? this.leave(i) : this.run(i)));
    return out;
  }

  private async retire({ jobId, key }: { jobId: string; key: string }): Promise<Report> {
    const s = await this.door.status(jobId, key);
    if (s !== 'unknown' && s !== 'ended') await this.door.refund(jobId, key);
    return { jobId, state: 'ended' };
  }

  private async run(view: Run): Promise<Report | null> {
    const mine = this.local.get(view.jobId);
    const i = {
      ...view,
      vm: mine?.vm ?? view.vm,
      cstrap: mine?.cstrap ?? view.cstrap,
      state: mine?.state ?? view.state,
    };
    const s = await this.door.status(i.jobId, i.key);
    if (s === 'unknown') {
      const b = await this.door.boot(i.token);
      if ('refused' in b) {
        this.o.log?.(`agent: ${i.id}: node refused its token (${b.refused}); asking for another`);
        return { jobId: i.jobId, state: 'lost' };
      }
      if (i.role === 'arrive')
        return { jobId: i.jobId, state: 'booted', vm: b.vm, cstrap: b.cstrap };
      const booted = { jobId: i.jobId, state: 'booted', vm: b.vm, cstrap: b.cstrap } as const;
      this.local.set(i.jobId, booted);
      await this.client.report([booted]);
      await this.upload(i, b.cstrap);
      return { jobId: i.jobId, state: 'running', vm: b.vm };
    }
    if (s !== 'running') return { jobId: i.jobId, state: 'lost' }; // suspended or ended: start afresh
    const served = i.vm ? this.door.served(i.vm) : null;
    if (served)
      return i.state === 'running' && i.role === 'run'
        ? null
        : { jobId: i.jobId, state: 'running', vm: i.vm! };
    // Its VM is on the way: once the leaving node says where it serves itself, this node's cstrap pulls it.
    if (i.role === 'arrive') return i.from && i.cstrap ? this.pull(i, i.cstrap, i.from) : null;
    if (i.state === 'running') return { jobId: i.jobId, state: 'lost' }; // its VM is gone
    if (!i.cstrap) return { jobId: i.jobId, state: 'lost' }; // booted by an agent that forgot where
    await this.upload(i, i.cstrap);
    return { jobId: i.jobId, state: 'running', vm: i.vm ?? undefined };
  }

  private async upload(i: Run, cstrap: string): Promise<void> {
    const programs = [];
    for (const p of i.programs) {
      const file = this.door.programFile(p.sha256);
      if (!fs.existsSync(file)) {
        fs.writeFileSync(`${file}.tmp`, await this.client.program(p.sha256));
        fs.renameSync(`${file}.tmp`, file);
      }
      programs.push({ file, args: p.args });
    }
    await this.door.upload(cstrap, i.jobId, i.key, {
      programs,
      memoryMiB: i.memoryMiB,
      tcplisten: i.tcplisten,
    });
    this.o.log?.(`agent: ${i.id} running (job ${i.jobId.slice(0, 8)})`);
  }

  /** Tell this node's cstrap (over its upload channel) to pull the arriving VM from its boot URI. */
  private async pull(i: Run, cstrap: string, from: string): Promise<Report | null> {
    if (this.pulling.has(from)) return null;
    this.pulling.add(from);
    try {
      this.o.log?.(`agent: ${i.id} arriving: its cstrap pulls it from ${from}`);
      await this.door.pullInto(cstrap, i.key, from);
    } finally {
      this.pulling.delete(from);
    }
    this.o.log?.(`agent: ${i.id} pulled from ${from}`);
    return { jobId: i.jobId, state: 'running', vm: i.vm ?? undefined };
  }

  private async leave(i: Leave): Promise<Report | null> {
    if (!i.to || !i.vm) return null; // the destination's cstrap is not up yet
    const vm = this.door.served(i.vm);
    if (!vm) return null; // already gone: the destination's agent reports the arrival
    this.o.log?.(`agent: ${i.id} leaving: it serves itself here for its destination to pull`);
    // The URI goes to the control service, which tells the arriving node: nothing here reaches out to it.
    await this.door.migrate(vm, i.key, (uri) =>
      this.client.report([{ jobId: i.jobId, state: 'serving', uri }]),
    );
    this.o.log?.(`agent: ${i.id} pulled by its destination`);
    return { jobId: i.jobId, state: 'migrated' };
  }
}
