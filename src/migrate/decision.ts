// The destination's side of a migration's commit (commit.ts has the rule): it
// holds the arrived VM, built but not started, says READY, and waits, fenced,
// for the arbiter's decision. It hears it from the source on the migration
// channel, from home on its own session (with a home), or from the source on a
// new connection to this cstrap (without one). It never runs without a commit;
// it waits at most DEST_GIVE_UP_MS, then discards the VM.
import type { Channel } from './channel.js';
import { Arb, HomeSession, KEEPALIVE_MS, SILENT_MS } from './arbiter.js';
import {
  json,
  Msg,
  parseDecision,
  type ArbiterInfo,
  type Decision,
  type Ready,
} from './protocol.js';

/** How long an undecided destination keeps the VM before giving up on it. */
export const DEST_GIVE_UP_MS = 600_000;

export interface DecisionWait {
  /** The decision; null if it never came. */
  decision: Promise<Decision | null>;
  /** A decision that arrived on a connection of its own (the source re-delivering it). */
  offer(d: Decision, from: Channel): void;
  /** Channels to acknowledge the decision on (the resolving connections). */
  readonly resolvers: Channel[];
  close(): void;
}

export function awaitDecision(o: {
  ch: Channel;
  arbiter: ArbiterInfo;
  psk: Buffer;
  ready: Ready;
  log: (m: string) => void;
  giveUpMs?: number;
  /** A session with home opened early (while the pages arrived). */
  session?: HomeSession | null;
}): DecisionWait {
  const { migration, home } = o.arbiter;
  let settle!: (d: Decision | null) => void;
  const decision = new Promise<Decision | null>((r) => (settle = r));
  let done = false;
  const take = (d: Decision | null, how: string): void => {
    if (done) return;
    done = true;
    o.log(d ? `decision for migration ${migration.slice(0, 8)}: ${d} (from ${how})` : how);
    settle(d);
  };
  o.ch.keepalive(KEEPALIVE_MS, SILENT_MS);
  o.ch.send(Msg.READY, json(o.ready)).catch(() => undefined);
  // The source's channel: it relays the decision once it knows it.
  void (async () => {
    try {
      for (;;) {
        const m = await o.ch.next();
        if (!m) return;
        if ((m.type as Msg) !== Msg.DECISION) continue;
        const d = parseDecision(m.payload);
        if (d.migration === migration) take(d.decision, 'the source');
      }
    } catch (err) {
      if (!done) o.log(`the source's channel failed (${(err as Error).message}); still waiting`);
    }
  })();
  let session: HomeSession | null = null;
  if (home) {
    session = o.session ?? new HomeSession(home, o.psk, migration, 'dest', o.log);
    void session.decision.then((d) => take(d, `home ${home}`));
    // READY is idempotent at home: sent again on every re-connect.
    void session.send(Arb.READY, { vmId: o.ready.vmId });
    void session.await(Arb.READY, { vmId: o.ready.vmId }, () => Infinity);
  }
  const giveUp = setTimeout(
    () =>
      take(
        null,
        `no decision within ${(o.giveUpMs ?? DEST_GIVE_UP_MS) / 1000} s: discarding the VM`,
      ),
    o.giveUpMs ?? DEST_GIVE_UP_MS,
  );
  giveUp.unref();
  const resolvers: Channel[] = [];
  return {
    decision,
    resolvers,
    offer(d, from) {
      resolvers.push(from);
      take(d, 'the source, re-delivered');
    },
    close() {
      clearTimeout(giveUp);
      session?.close();
    },
  };
}
