// Home's one TCP port for VMs: each connection names its key by a hint
// (src/migrate/keyed.ts). A job's session key opens that job's session (relayed
// clients, commands, questions); a migration key (a destination VM's, or
// `roam home --key`) opens a session with the commit arbiter.
import net from 'node:net';
import type { Channel } from '../migrate/channel.js';
import { acceptKeyed, keyHint } from '../migrate/keyed.js';
import {
  checks,
  decodeRelay,
  Home,
  SESSION_KEEPALIVE_MS,
  SESSION_SILENT_MS,
  parseHomeJson,
  toJson,
  type Answer,
  type Ask,
  type Command,
  type Hello,
  type Result,
} from '../guest/home-wire.js';
import type { Arbiter } from './arbiter.js';
import type { Jobs } from './jobs.js';
import { JobRelay, type SessionLink } from './relay.js';

/** How long a session's first message may take (a migration's pre-copy on a slow link). */
const HELLO_WAIT_MS = 120_000;

export type AskHandler = (job: string, a: Ask) => Promise<Omit<Answer, 'id'>>;

export class Sessions {
  private server: net.Server | null = null;
  /** Key hint -> job id (session keys) or null (migration keys). */
  private readonly hints = new Map<string, { key: Buffer; job: string | null }>();
  readonly relays = new Map<string, JobRelay>();
  private readonly live = new Map<string, { ch: Channel; link: SessionLink; since: number }>();
  private nextCmd = 1;
  private readonly results = new Map<number, (r: Result) => void>();

  constructor(
    private readonly jobs: Jobs,
    private readonly arbiter: Arbiter,
    private readonly onAsk: AskHandler,
    private readonly log: (m: string) => void,
  ) {
    for (const j of jobs.list()) {
      this.addKey(Buffer.from(j.session_key, 'hex'), j.id);
      this.addKey(Buffer.from(j.vm_key, 'hex'), null);
    }
  }

  /** A key home accepts connections under: a job's session key, or a migration key. */
  addKey(key: Buffer, job: string | null): void {
    this.hints.set(keyHint(key), { key, job });
  }

  relay(job: string): JobRelay {
    let r = this.relays.get(job);
    if (!r) {
      r = new JobRelay(job, this.log);
      this.relays.set(job, r);
    }
    return r;
  }

  /** When the job's current session began (null: no VM attached). */
  attachedSince(job: string): number | null {
    return this.live.get(job)?.since ?? null;
  }

  listen(host: string, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const server = net.createServer((sock) => void this.accept(sock));
      server.once('error', reject);
      server.listen(port, host, () => {
        const a = server.address() as net.AddressInfo;
        resolve(`${a.address}:${a.port}`);
      });
      this.server = server;
    });
  }

  close(): void {
    this.server?.close();
    for (const r of this.relays.values()) r.close();
    for (const l of this.live.values()) l.ch.destroy();
  }

  private async accept(sock: net.Socket): Promise<void> {
    sock.on('error', () => undefined);
    let ch: Channel, hint: string;
    try {
      ({ channel: ch, hint } = await acceptKeyed(sock, (h) => this.hints.get(h)?.key));
    } catch {
      return void sock.destroy();
    }
    const job = this.hints.get(hint)?.job;
    if (job === null || job === undefined) return this.arbiter.serve(ch);
    try {
      await this.session(ch, job);
    } catch (err) {
      this.log(`job ${job}: session ended: ${(err as Error).message}`);
    } finally {
      ch.destroy();
    }
  }

  private async session(ch: Channel, job: string): Promise<void> {
    ch.keepalive(SESSION_KEEPALIVE_MS, SESSION_SILENT_MS);
    // An arriving VM connects while its pages arrive and says HELLO at their end.
    const first = await ch.next(HELLO_WAIT_MS);
    if (!first || first.type !== Home.HELLO) throw new Error('no HELLO');
    const h = parseHomeJson<Hello>(first.payload, 'HELLO', checks.hello);
    if (h.migration !== undefined && !(await this.committed(ch, job, h))) return;
    const token = h.job === job ? this.jobs.rotate(job, h.token, this.live.has(job)) : null;
    if (!token) {
      const reason = `job ${job}: a stale or foreign continuation token (an old copy of the VM?)`;
      this.log(reason);
      await ch.send(Home.REFUSED, toJson({ reason })).catch(() => undefined);
      return;
    }
    const link: SessionLink = { send: (t, p) => void ch.send(t, p).catch(() => undefined) };
    const relay = this.relay(job);
    const welcome = relay.attach(link, h, token);
    await ch.send(Home.WELCOME, toJson(welcome));
    this.live.set(job, { ch, link, since: Date.now() });
    const row = this.jobs.get(job);
    if (row && (row.state === 'booting' || row.vm_id !== h.vm.slice(0, 64)))
      this.jobs.update(job, {
        state: row.state === 'booting' ? 'running' : row.state,
        vm_id: h.vm.slice(0, 64),
      });
    this.log(
      `job ${job}: session up (${welcome.streams.length} of ${h.streams.length} stream(s) resumed)`,
    );
    try {
      for (;;) {
        const m = await ch.next();
        if (!m) return;
        this.onMessage(job, link, ch, m.type, m.payload);
      }
    } finally {
      relay.detach(link);
      if (this.live.get(job)?.link === link) this.live.delete(job);
    }
  }

  /**
   * An arriving copy said HELLO before its migration was decided: hold it until the
   * arbiter has written the decision. On a commit it goes on as any HELLO does, so
   * WELCOME and the clients' bytes leave right after DECIDED; on an abort it is refused.
   */
  private async committed(ch: Channel, job: string, h: Hello): Promise<boolean> {
    const settled = this.arbiter.settled(h.migration!);
    const row = settled && this.jobs.get(job);
    const refuse = (reason: string) => {
      this.log(`job ${job}: ${reason}`);
      return ch.send(Home.REFUSED, toJson({ reason })).then(
        () => false,
        () => false,
      );
    };
    // Only a migration home began, of this job's VM (a copy of it holds the session key).
    if (!settled || !row || h.vm !== row.vm_id)
      return refuse(`a HELLO for migration ${h.migration!.slice(0, 8)}, not one of this job's`);
    // The channel's keepalive ends a silent peer; a closed one ends the wait too. (Its
    // messages stay queued: the session reads them once it is WELCOMEd.)
    const closed = new Promise<'closed'>((r) => {
      if (ch.socket.destroyed) r('closed');
      ch.socket.once('close', () => r('closed'));
    });
    const d = await Promise.race([settled, closed]);
    if (d === 'commit') return true;
    if (d === 'closed') return false;
    return refuse(`migration ${h.migration!.slice(0, 8)} aborted: this copy never runs`);
  }

  private onMessage(job: string, link: SessionLink, ch: Channel, type: number, b: Buffer): void {
    switch (type) {
      case Home.DATA:
      case Home.ACK:
      case Home.FIN:
      case Home.RST:
        return this.relay(job).onFrame(link, type, decodeRelay(b));
      case Home.RESULT: {
        const r = parseHomeJson<Result>(b, 'RESULT', checks.result);
        return this.results.get(r.id)?.(r);
      }
      case Home.ASK: {
        const a = parseHomeJson<Ask>(b, 'ASK', checks.ask);
        void this.onAsk(job, a)
          .catch((err: Error) => ({ ok: false, error: err.message }))
          .then((ans) => ch.send(Home.ANSWER, toJson({ ...ans, id: a.id })))
          .catch(() => undefined);
        return;
      }
      default:
        throw new Error(`message type ${type} from the VM`);
    }
  }

  /** Send a command to the job's VM over its current session; its result, or an error after `timeoutMs`. */
  async command(job: string, c: Omit<Command, 'id'>, timeoutMs: number): Promise<Result> {
    const s = this.live.get(job);
    if (!s) throw new Error(`job ${job} has no session with home right now (is its VM running?)`);
    const id = this.nextCmd++;
    return new Promise<Result>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.results.delete(id);
        reject(new Error(`job ${job}: no result for ${c.op} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.results.set(id, (r) => {
        clearTimeout(timer);
        this.results.delete(id);
        resolve(r);
      });
      s.ch.send(Home.CMD, toJson({ ...c, id })).catch((err: Error) => {
        clearTimeout(timer);
        this.results.delete(id);
        reject(err);
      });
    });
  }
}
