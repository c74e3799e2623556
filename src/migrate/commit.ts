// The source's side of a migration's commit (after its stream has gone out).
//
// The rule, the same whoever arbitrates (arbiter.ts):
//  - the destination runs only once it hears COMMIT; the source unfences only on ABORT;
//  - the source wants COMMIT once the destination said READY (it holds the whole
//    stream, verified, the VM built), ABORT on anything else (refusal, a closed or
//    silent link, no READY within the window);
//  - with a home, home decides and tells both; it commits only on the source's
//    request, or, once the destination is READY, when the source's session closed
//    (its process died) and did not come back; and never after its window. So a
//    source that never asked to commit may resume on its own once its window (plus a
//    margin) has passed while home stays unreachable: by then home has aborted. A
//    source that did ask is in doubt and waits for the decision (fenced, asking again
//    every half second) however long home is away;
//  - without a home, the source decides (a durable file) and delivers the decision,
//    re-connecting to the destination's cstrap until it acknowledges. The
//    destination waits for it, fenced, and never runs without it.
import { connectChannel, type Channel } from './channel.js';
import { Arb, decideLocally, sleep, withTimeout, type HomeSession } from './arbiter.js';
import { json, Msg, parseJson, type Decision, type Ready, type Started } from './protocol.js';
import { parseHostPort } from '../util/address.js';

/** After the window, how much longer a source that never asked to commit waits for home before resuming. */
export const RESUME_MARGIN_MS = 2_000;

/** How long a committed source without a home keeps trying to tell its destination. */
const DELIVER_FOR_MS = 300_000;

export interface CommitInput {
  ch: Channel;
  to: string;
  psk: Buffer;
  migration: string;
  session: HomeSession | null;
  /** performance.now() from which the window runs (home's BEGUN heard, or the stream sent). */
  windowFrom: number;
  windowMs: number;
  ready: Promise<Ready>;
  started: Promise<Started>;
  log: (m: string) => void;
  kind: 'migration' | 'fork';
}

export interface CommitOutcome {
  decision: Decision;
  /** Why the source wanted to abort (or why the decision was abort). */
  reason?: string;
  vmId?: string;
  started: Started | null;
}

export async function commitOrAbort(o: CommitInput): Promise<CommitOutcome> {
  const deadline = o.windowFrom + o.windowMs;
  let ready: Ready | null = null;
  let reason: string | undefined;
  try {
    ready = await withTimeout(
      o.ready,
      Math.max(0, deadline - performance.now()),
      `${o.to} did not report READY within the commit window (${o.windowMs} ms)`,
    );
  } catch (err) {
    reason = (err as Error).message;
  }
  const want: Decision = ready ? 'commit' : 'abort';
  o.log(
    want === 'commit'
      ? `${o.to} holds the verified VM; asking ${o.session ? `home ${o.session.home}` : 'this host'} to commit`
      : `aborting: ${reason}`,
  );
  const decision = await decide(o, want, deadline);
  if (decision === 'abort') {
    o.ch.send(Msg.DECISION, json({ migration: o.migration, decision })).catch(() => undefined);
    setTimeout(() => o.ch.destroy(), 200).unref();
    // Without a home, a destination that is READY but did not hear this waits for it: tell it (briefly).
    if (ready && !o.session) void deliver(o, 'abort', 5_000);
    return {
      decision,
      reason: reason ?? (want === 'commit' ? 'home decided to abort' : undefined),
      started: null,
    };
  }
  o.ch.send(Msg.DECISION, json({ migration: o.migration, decision })).catch(() => undefined);
  let started = await withTimeout(o.started, 2_000, '').catch(() => null);
  // Without a home the destination learns the decision only from us: make sure it has
  // (a fork's parent runs on meanwhile: it does not wait for that).
  if (!started && !o.session) {
    const delivered = deliver(o, 'commit', DELIVER_FOR_MS);
    if (o.kind === 'migration') started = await delivered;
  }
  o.ch.destroy();
  return { decision, vmId: ready?.vmId, started };
}

/**
 * A migration home has heard of (BEGIN) failed before the commit step: home must
 * record the abort before this source unfences (else home, seeing the source's
 * session close, could take the source for dead and commit to a READY destination).
 */
export async function abortAtHome(
  session: HomeSession,
  windowFrom: number,
  windowMs: number,
  log: (m: string) => void,
): Promise<Decision> {
  const d = await decide(
    { session, migration: session.migration, log },
    'abort',
    windowFrom + windowMs,
  );
  return d;
}

async function decide(
  o: Pick<CommitInput, 'session' | 'migration' | 'log'>,
  want: Decision,
  deadline: number,
): Promise<Decision> {
  if (!o.session) {
    try {
      return decideLocally(o.migration, want);
    } catch (err) {
      // Nothing was decided (or announced): the destination cannot have heard a commit.
      o.log(`cannot write the decision (${(err as Error).message}): aborting`);
      return 'abort';
    }
  }
  const s = o.session;
  // A request to commit that home may have taken puts this source in doubt: from then
  // on only home's answer frees it. (One that never reached an open session did not.)
  const until = (): number =>
    want === 'commit' && s.sent.has(Arb.DECIDE) ? Infinity : deadline + RESUME_MARGIN_MS;
  await s.send(Arb.DECIDE, { want });
  const d = await s.await(Arb.DECIDE, { want }, until);
  if (d) return d;
  o.log(
    `home ${s.home} unreachable past the commit window (${s.lastError}); it cannot have committed: resuming here`,
  );
  return 'abort';
}

/**
 * Re-connect to the destination's cstrap and hand it the decision until it
 * acknowledges (STARTED for a commit, the DECISION echoed for an abort).
 */
async function deliver(o: CommitInput, decision: Decision, forMs: number): Promise<Started | null> {
  const { host, port } = parseHostPort(o.to);
  const until = performance.now() + forMs;
  while (performance.now() < until) {
    try {
      const ch = await connectChannel(host, port, { psk: o.psk, timeoutMs: 2_000 });
      try {
        await ch.send(Msg.DECISION, json({ migration: o.migration, decision }));
        const m = await ch.next(3_000);
        if (m?.type === Msg.STARTED) return parseJson<Started>(m.payload, 'STARTED');
        if (m?.type === Msg.DECISION) return null;
      } finally {
        ch.destroy();
      }
    } catch (err) {
      // Nothing listens there any more: the cstrap has ended (it ran the VM and it
      // exited, or it died); telling it again cannot help.
      if ((err as Error).message.includes('connection refused')) break;
      o.log(`telling ${o.to} to ${decision}: ${(err as Error).message}; retrying`);
    }
    await sleep(500);
  }
  if (decision === 'commit')
    o.log(`${o.to} never acknowledged the commit; this copy stays stopped`);
  return null;
}
