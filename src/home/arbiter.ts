// Home as a migration's commit arbiter (the rule is in src/migrate/commit.ts).
// Both parties keep a session open to home (keepalives both ways); home decides
// once, writes the decision to its ledger, then tells both:
//  - ABORT when the source asks, when the window closes undecided, or when the
//    source asks to commit but the destination has not said READY to home (a
//    destination that cannot reach home never runs);
//  - COMMIT when the source asks and the destination is READY with its session
//    open, or when the destination is READY and the source's session CLOSED (its
//    process died: a silent session is not taken for a death) and did not come
//    back within SOURCE_GONE_MS. Never after the window.
import { ChannelError, type Channel } from '../migrate/channel.js';
import { Arb, KEEPALIVE_MS, parseArb, SILENT_MS, type ArbMessage } from '../migrate/arbiter.js';
import { json, type Decision } from '../migrate/protocol.js';
import type { HomeLedger, MigrationRow } from './ledger.js';

/** A source whose session closed gets this long to come back before it is taken for dead. */
export const SOURCE_GONE_MS = 1_500;
/** A source asking to commit: how long home waits for the destination's own READY. */
export const DEST_READY_WAIT_MS = 3_000;

interface Live {
  source: Channel | null;
  dest: Channel | null;
  sourceGone: boolean;
  commitWanted: boolean;
  timers: NodeJS.Timeout[];
}

export class Arbiter {
  private readonly live = new Map<string, Live>();
  private readonly waiters = new Map<string, Array<(d: Decision) => void>>();

  constructor(
    private readonly ledger: HomeLedger,
    private readonly log: (m: string) => void = () => {},
    /** Told of every decision once it is written (home follows its jobs by it). */
    private readonly onDecided: (m: MigrationRow) => void = () => {},
  ) {
    // After a restart: every undecided migration still closes at its deadline.
    for (const row of ledger.undecided()) this.armDeadline(row.id, row.deadline);
  }

  close(): void {
    for (const l of this.live.values()) for (const t of l.timers) clearTimeout(t);
  }

  private entry(id: string): Live {
    let l = this.live.get(id);
    if (!l) {
      l = {
        source: null,
        dest: null,
        sourceGone: false,
        commitWanted: false,
        timers: [],
      };
      this.live.set(id, l);
    }
    return l;
  }

  private armDeadline(id: string, deadline: number): void {
    const t = setTimeout(
      () => this.decide(id, 'abort', 'the commit window closed undecided'),
      Math.max(0, deadline - Date.now()),
    );
    this.entry(id).timers.push(t);
  }

  /**
   * The migration's decision once it is written (at once if it is): null if home
   * never began it. Every begun migration is decided by its deadline.
   */
  settled(id: string): Promise<Decision> | null {
    const row = this.ledger.get(id);
    if (!row) return null;
    if (row.decision) return Promise.resolve(row.decision);
    return new Promise((r) => this.waiters.set(id, [...(this.waiters.get(id) ?? []), r]));
  }

  /** Serve one party's session (a channel home accepted under a migration key). */
  async serve(ch: Channel): Promise<void> {
    ch.keepalive(KEEPALIVE_MS, SILENT_MS);
    const mine = new Map<string, ArbMessage['role']>();
    let silent = false;
    try {
      for (;;) {
        const m = await ch.next();
        if (!m) break;
        const msg = parseArb(m.payload);
        mine.set(msg.migration, msg.role);
        this.onMessage(ch, m.type, msg);
      }
    } catch (err) {
      silent = err instanceof ChannelError && err.code === 'timeout';
    }
    ch.destroy();
    for (const [id, role] of mine) this.detach(ch, id, role, silent);
  }

  private onMessage(ch: Channel, type: number, m: ArbMessage): void {
    const l = this.entry(m.migration);
    if (m.role === 'source') {
      l.source = ch;
      l.sourceGone = false;
    } else l.dest = ch;
    const row = this.ledger.get(m.migration);
    if (row?.decision) return this.tell(ch, m.migration, row.decision);
    if (type === Arb.BEGIN && m.role === 'source') {
      if (!row) {
        this.ledger.begin(m.migration, m.vmId ?? '?', m.to ?? '?', m.windowMs ?? 30_000);
        this.armDeadline(m.migration, this.ledger.get(m.migration)!.deadline);
        this.log(`migration ${m.migration.slice(0, 8)}: vm ${m.vmId} to ${m.to} begins`);
      }
      ch.send(Arb.BEGUN, json({ migration: m.migration })).catch(() => undefined);
    } else if (!row) {
      // Never begun here: it cannot commit.
      this.decide(m.migration, 'abort', `${m.role} spoke of a migration home never began`);
    } else if (type === Arb.READY && m.role === 'dest') {
      this.ledger.destReady(m.migration);
      if (l.commitWanted) this.decide(m.migration, 'commit', 'source asked; destination ready');
      else if (l.sourceGone)
        this.decide(m.migration, 'commit', 'destination ready; the source had died');
      else ch.send(Arb.PENDING, json({ migration: m.migration })).catch(() => undefined);
    } else if (type === Arb.DECIDE && m.role === 'source') {
      if (m.want !== 'commit') return void this.decide(m.migration, 'abort', 'source asked');
      if (row.dest_ready_at !== null && l.dest)
        return void this.decide(m.migration, 'commit', 'source asked; destination ready');
      l.commitWanted = true;
      l.timers.push(
        setTimeout(
          () => this.decide(m.migration, 'abort', 'the destination never said READY to home'),
          DEST_READY_WAIT_MS,
        ),
      );
    } else ch.send(Arb.PENDING, json({ migration: m.migration })).catch(() => undefined);
  }

  /** A party's session ended: a closed source session may mean the source died. */
  private detach(ch: Channel, id: string, role: ArbMessage['role'], silent: boolean): void {
    const l = this.live.get(id);
    if (!l) return;
    if (role === 'dest') {
      if (l.dest === ch) l.dest = null;
      return;
    }
    if (l.source !== ch) return;
    l.source = null;
    if (silent) return; // a silent link is not a death: the source may resume after the window
    l.timers.push(
      setTimeout(() => {
        const row = this.ledger.get(id);
        if (l.source || !row || row.decision) return;
        l.sourceGone = true;
        if (row.dest_ready_at !== null && l.dest)
          this.decide(id, 'commit', 'destination ready; the source died');
      }, SOURCE_GONE_MS),
    );
  }

  /** Write the decision (once), then announce it to whoever is attached. */
  decide(id: string, want: Decision, reason: string): Decision {
    const d = this.ledger.decide(id, want, reason);
    const l = this.entry(id);
    for (const t of l.timers.splice(0)) clearTimeout(t);
    this.log(`migration ${id.slice(0, 8)}: ${d} (${reason})`);
    const row = this.ledger.get(id);
    if (row) this.onDecided(row);
    for (const ch of [l.source, l.dest]) if (ch) this.tell(ch, id, d);
    for (const w of this.waiters.get(id) ?? []) w(d);
    this.waiters.delete(id);
    return d;
  }

  private tell(ch: Channel, id: string, d: Decision): void {
    ch.send(Arb.DECIDED, json({ migration: id, decision: d })).catch(() => undefined);
  }
}
