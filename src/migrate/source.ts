// The source's half of a live migration or network fork (thesis chapter 5, 6.2-6.6):
// the VM sends itself. Connect to a cstrap, upload the loader, run the page
// cleaner into the encrypted channel (pre-copy rounds, throttling, freeze), and
// let the arbiter decide (commit.ts): the destination runs only on a commit, and
// on an abort the source unfences and runs on with its held output released.
import {
  PageCleaner,
  type CheckpointResult,
  type RoundProgress,
  type RoundStats,
} from '../checkpoint/cleaner.js';
import { loaderManifest } from './loader.js';
import { packPrepared } from '../wasm/prepare.js';
import type { Kernel } from '../guest/kernel.js';
import { parseHostPort } from '../util/address.js';
import { connectChannel, type Channel } from './channel.js';
import {
  DEFAULT_MAX_DOWNTIME_MS,
  json,
  Msg,
  parseJson,
  wallNow,
  type ArbiterInfo,
  type Ready,
  type Refuse,
  type Started,
} from './protocol.js';
import {
  DEFAULT_COMMIT_WINDOW_MS,
  HomeSession,
  KEEPALIVE_MS,
  newMigrationId,
  SILENT_MS,
} from './arbiter.js';
import { abortAtHome, commitOrAbort } from './commit.js';
import { channelTarget, type ChannelTarget } from './target.js';
import { rehearse } from './rehearsal.js';
import { mib } from '../util/units.js';

export interface MigrateOptions {
  /** The channel another way (a pull: the destination connected to this VM's boot URI); default: connect to `to`. */
  connect?: () => Promise<Channel>;
  /** HOST:PORT of a cstrap. */
  to: string;
  kind: 'migration' | 'fork';
  /** Key shared with the destination (the channel derives a fresh per-migration key from it). */
  psk: Buffer;
  /** The final copy must fit in this much link time; sets the snapshot-buffer limit. */
  maxDowntimeMs?: number;
  /** Bytes per second. */
  maxBandwidth?: number;
  throttle?: boolean;
  compress?: 'auto' | 'always' | 'never';
  maxRounds?: number;
  /** At the freeze, hash all memory and check the pre-copied pages against it (tests). */
  verify?: boolean;
  /** HOST:PORT of the home that arbitrates; without one this process decides (commit.ts). */
  home?: string;
  /** From the arbiter's BEGIN (just before the freeze) to the last moment a commit may happen. */
  windowMs?: number;
  onRound?: (r: RoundStats & { rate: number | null; compressing: boolean }) => void;
  onProgress?: (p: RoundProgress) => void;
  onPhase?: (msg: string) => void;
  /**
   * The migration committed: the destination runs the VM. Called at once, before waiting
   * for its first-instruction report, so that a migration's source lets go of its
   * sockets now (its clients reconnect to the destination that much sooner).
   */
  onConfirm?: () => void;
}

export interface MigrateResult extends Omit<CheckpointResult, 'downtimeMs'> {
  to: string;
  kind: 'migration' | 'fork';
  /** The VM's id at the destination (a fork's child gets a new one). */
  vmId: string;
  /** Source freeze: programs stopped while the last dirty pages and kernel state were copied. */
  freezeMs: number;
  /** Freeze to the destination's first instruction (null if the destination did not report it). */
  downtimeMs: number | null;
  /** Freeze to the commit decision. */
  confirmMs: number;
  migration: string;
  /** Who decided: a home's address, or "source". */
  arbiter: string;
  /** Wall-clock time of the freeze (ms since the epoch, fractional). */
  frozenAt: number;
  /** Where the downtime went, ms after the freeze: stream sent, END received, verified, built, first instruction. */
  timeline: {
    sentMs: number;
    endMs?: number;
    verifiedMs?: number;
    builtMs?: number;
    firstInstructionMs?: number;
  };
  /** Measured link throughput in bytes per second. */
  linkRate: number | null;
  compressed: boolean;
}

const failure = (o: MigrateOptions, err: unknown): Error =>
  new Error(
    `${o.kind} to ${o.to} failed: ${(err as Error).message.replace(/\.+$/, '')}. The VM runs on here; nothing was lost.`,
    { cause: err },
  );

const hostPort = (to: string): [string, number] => {
  const { host, port } = parseHostPort(to);
  return [host, port];
};

/** Migrate or fork `kernel` to `o.to` (or over `o.connect`'s channel: a pull migration, the destination connected to us). */
export async function migrateVm(kernel: Kernel, o: MigrateOptions): Promise<MigrateResult> {
  const phase = o.onPhase ?? (() => {});
  const failed = (err: unknown): Error => failure(o, err);
  // Warm the freeze's code on a throwaway VM while the connection is made and the
  // first rounds run (see rehearsal.ts); the freeze waits for it.
  const warm = rehearse(kernel.modules()).catch(() => undefined);
  const migration = newMigrationId();
  const windowMs = o.windowMs ?? DEFAULT_COMMIT_WINDOW_MS;
  const session = o.home ? new HomeSession(o.home, o.psk, migration, 'source', phase) : null;
  const ch = await (
    o.connect?.() ?? connectChannel(...hostPort(o.to), { psk: o.psk, timeoutMs: 10_000 })
  ).catch((err: unknown) => Promise.reject(failed(err)));
  // A silent link or a frozen peer fails the channel instead of hanging it.
  ch.keepalive(KEEPALIVE_MS, SILENT_MS);
  let cleaner: PageCleaner | undefined;
  let decided = false;
  /** performance.now() when home answered BEGIN (0: home has not heard of this migration). */
  let windowFrom = 0;
  try {
    await sendLoaderAndModules(ch, kernel, o.to, arbiterInfo(kernel, o, migration), phase);

    const target = channelTarget(ch, { maxBandwidth: o.maxBandwidth, compress: o.compress });
    // The destination speaks again only to say READY, or to refuse and hang up.
    const reply = replies(ch, o.to, () => target.synced());
    reply.ready.catch((err: Error) => void target.abort(err));
    // Home hears of the migration just before the freeze (the programs run meanwhile);
    // if it cannot be reached, there is no freeze.
    const begun = session
      ? session.begin(kernel.vmId, o.to, windowMs).then((t) => void (windowFrom = t))
      : Promise.resolve();
    begun.catch((err: Error) => void target.abort(err));

    cleaner = sourceCleaner(kernel, target, o, Promise.all([warm, begun]));
    const res = await runExplained(cleaner, [reply.ready, begun]);
    const sentMs = wallNow() - cleaner.frozenAt;
    phase(`stream sent (${mib(res.bytes)}); waiting for ${o.to} to be ready`);
    decided = true; // from here on only the arbiter's decision unfences
    const out = await commitOrAbort({
      ch,
      to: o.to,
      psk: o.psk,
      migration,
      session,
      windowFrom: session ? windowFrom : performance.now(),
      windowMs,
      ready: reply.ready,
      started: reply.started,
      log: phase,
      kind: o.kind,
    });
    session?.close();
    if (out.decision === 'abort') {
      if (kernel.fenced) kernel.unfence();
      throw failed(new Error(out.reason ?? 'the migration was aborted'));
    }
    const confirmMs = wallNow() - cleaner.frozenAt;
    o.onConfirm?.();
    return resultOf(
      res,
      o,
      out,
      { migration, vmId: kernel.vmId },
      cleaner.frozenAt,
      { sentMs, confirmMs },
      target,
    );
  } catch (err) {
    if (decided) throw err;
    ch.destroy();
    return await failBeforeDecision(err, {
      kernel,
      o,
      session,
      windowFrom,
      windowMs,
      phase,
      failed,
    });
  }
}

/** The destination's READY and STARTED (or its refusal, or its death). */
function replies(
  ch: Channel,
  to: string,
  synced: () => void,
): { ready: Promise<Ready>; started: Promise<Started> } {
  let gotReady!: (c: Ready) => void, failReady!: (e: Error) => void;
  let gotStarted!: (s: Started) => void, failStarted!: (e: Error) => void;
  const ready = new Promise<Ready>((res, rej) => {
    gotReady = res;
    failReady = rej;
  });
  const started = new Promise<Started>((res, rej) => {
    gotStarted = res;
    failStarted = rej;
  });
  ready.catch(() => undefined);
  started.catch(() => undefined);
  void (async () => {
    try {
      for (;;) {
        const m = await ch.next();
        if (!m) throw new Error(`${to} closed the connection before it was ready`);
        if (m.type === Msg.REFUSE)
          throw new Error(`${to} refused the VM: ${parseJson<Refuse>(m.payload, 'REFUSE').reason}`);
        if (m.type === Msg.SYNCED) synced();
        else if (m.type === Msg.READY) gotReady(parseJson<Ready>(m.payload, 'READY'));
        else if (m.type === Msg.STARTED) {
          gotStarted(parseJson<Started>(m.payload, 'STARTED'));
          return;
        } else throw new Error(`${to} sent unexpected message ${m.type}`);
      }
    } catch (err) {
      failReady(err as Error);
      failStarted(err as Error);
    }
  })();
  return { ready, started };
}

/** Who arbitrates; a VM moving under its own home's arbitration: its session key too (the destination calls home early). */
function arbiterInfo(kernel: Kernel, o: MigrateOptions, migration: string): ArbiterInfo {
  const relay = kernel.relay;
  const own = o.kind === 'migration' && relay && !relay.orphan && o.home === relay.config.home;
  return { migration, home: o.home ?? null, sessionKey: own ? relay.config.key : undefined };
}

/** The loader (the destination may refuse it), who arbitrates, and the prepared modules. */
async function sendLoaderAndModules(
  ch: Channel,
  kernel: Kernel,
  to: string,
  arbiter: ArbiterInfo,
  phase: (m: string) => void,
): Promise<void> {
  phase(`connected to ${to}; uploading the loader`);
  await ch.send(Msg.LOADER, loaderManifest());
  const ok = await ch.next(10_000);
  if (!ok) throw new Error(`${to} closed the connection instead of accepting the loader`);
  if (ok.type === Msg.REFUSE)
    throw new Error(`${to} refused the VM: ${parseJson<Refuse>(ok.payload, 'REFUSE').reason}`);
  if (ok.type !== Msg.LOADER_OK)
    throw new Error(`${to} answered the loader with message ${ok.type}`);
  await ch.send(Msg.ARBITER, json(arbiter));
  for (const hash of new Set(
    [...kernel.processes.values()].filter((p) => p.status !== 'exited').map((p) => p.mod.meta.hash),
  )) {
    const packed = packPrepared(hash);
    if (packed) await ch.send(Msg.PREPARED, packed);
  }
}

/** The source's page cleaner: fenced, strict, at priority, its buffer capped by what the link moves in the downtime budget. */
function sourceCleaner(
  kernel: Kernel,
  target: ChannelTarget,
  o: MigrateOptions,
  beforeFreeze: Promise<unknown>,
): PageCleaner {
  const maxDowntime = o.maxDowntimeMs ?? DEFAULT_MAX_DOWNTIME_MS;
  return new PageCleaner(kernel, target, {
    beforeFreeze,
    // 256 KiB batches. The programs get a slice after every 20 ms of the cleaner's
    // work, or after 4 ms while they use under a quarter of the CPU (the scheduler's
    // duty): a server's clients wait
    // out each turn (with 20 ms turns the game server's round 0, 1,000 pages and
    // ~20 ms of work, held its replies for a whole turn: most of their gap across a
    // migration), while a program that computes keeps a third of the CPU at most
    // and the rounds converge (4 ms turns gave SQLite two thirds: its live
    // migration froze only after the program had finished its transaction).
    batchPages: 64,
    shortWorkMs: 4,
    kind: o.kind,
    fence: o.kind === 'migration',
    keepFencedOnError: true,
    strict: true,
    priority: true,
    throttle: o.throttle ?? true,
    maxRounds: o.maxRounds,
    verifyAtFreeze: o.verify,
    // As many pages as the link moves in the allowed downtime (at least the
    // starting buffer): the thesis' WSS-adaptive buffer, capped.
    bufferLimit: () => {
      // A paced stream moves no faster than its pace, whatever its bursts measure.
      const rate = Math.min(target.meter.rate ?? Infinity, o.maxBandwidth ?? Infinity);
      return rate > 0 && rate !== Infinity
        ? Math.max(64, Math.floor(((maxDowntime / 1000) * rate) / 4096))
        : Infinity;
    },
    onRound: (r) => o.onRound?.({ ...r, rate: target.meter.rate, compressing: target.compressing }),
    onProgress: o.onProgress,
  });
}

function resultOf(
  res: CheckpointResult,
  o: MigrateOptions,
  out: Awaited<ReturnType<typeof commitOrAbort>>,
  ids: { migration: string; vmId: string },
  frozenAt: number,
  t: { sentMs: number; confirmMs: number },
  target: ChannelTarget,
): MigrateResult {
  const { sentMs, confirmMs } = t;
  const { migration } = ids;
  const started = out.started;
  return {
    ...res,
    to: o.to,
    kind: o.kind,
    vmId: out.vmId ?? ids.vmId,
    migration,
    arbiter: o.home ?? 'source',
    freezeMs: res.downtimeMs,
    confirmMs,
    frozenAt: frozenAt,
    downtimeMs: started ? started.at - frozenAt : null,
    timeline: started
      ? {
          sentMs,
          endMs: started.endAt - frozenAt,
          verifiedMs: started.verifiedAt - frozenAt,
          builtMs: started.builtAt - frozenAt,
          firstInstructionMs: started.at - frozenAt,
        }
      : { sentMs },
    linkRate: target.meter.rate,
    compressed: target.compressing,
  };
}

/** The cleaner's run; if it fails, the destination's refusal or home's silence is the better message. */
async function runExplained(
  cleaner: PageCleaner,
  others: Promise<unknown>[],
): Promise<CheckpointResult> {
  try {
    return await cleaner.run();
  } catch (err) {
    const why = await Promise.race([
      Promise.all(others).then(
        () => null,
        (e: Error) => e,
      ),
      new Promise<null>((r) => setTimeout(() => r(null), 100)),
    ]);
    throw why ?? err;
  }
}

/** A failure before the decision: once home has heard of the migration, only its abort lets this copy run on. */
async function failBeforeDecision(
  err: unknown,
  c: {
    kernel: Kernel;
    o: MigrateOptions;
    session: HomeSession | null;
    windowFrom: number;
    windowMs: number;
    phase: (m: string) => void;
    failed: (e: unknown) => Error;
  },
): Promise<never> {
  const { kernel, o, session } = c;
  if (session && c.windowFrom > 0) {
    const d = await abortAtHome(session, c.windowFrom, c.windowMs, c.phase);
    if (d === 'commit') {
      session.close();
      o.onConfirm?.(); // the destination has the VM: this copy stops
      throw new Error(
        `${o.kind} to ${o.to} committed at home after a failure here: ${(err as Error).message}`,
      );
    }
  }
  session?.close();
  // Nothing escaped while fenced; release it and carry on here.
  if (kernel.fenced) kernel.unfence();
  throw c.failed(err);
}
