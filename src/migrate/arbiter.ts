// Who decides a migration. Every migration commits or aborts by ONE decision,
// made durable by its arbiter before anyone hears of it:
//
// - with a home (`--home HOST:PORT`), home decides (src/home/arbiter.ts) and
//   writes the decision to its SQLite ledger first;
// - without one, the source's own process is the arbiter: it writes the decision
//   to $ROAM_HOME/decisions/<migration> (created exclusively, fsynced) first.
//
// This file is both parties' client of home's arbiter protocol, carried on the
// same encrypted channel as a migration (keyed with the VM's key, which home
// holds too), and the source's local arbiter.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Channel } from './channel.js';
import { connectKeyed } from './keyed.js';
import { parseHostPort } from '../util/address.js';
import { roamHome } from '../util/home.js';
import { json, parseDecision, parseJson, type Decision } from './protocol.js';
import { RoamError } from '../util/errors.js';

/** Messages between a migration's parties and home's arbiter. */
export const Arb = {
  /** Source, just before its freeze: this migration begins; it commits within `windowMs` or not at all. */
  BEGIN: 1,
  /** Home: noted; the window runs from now. */
  BEGUN: 2,
  /** Destination: I hold the whole stream, verified and built. */
  READY: 3,
  /** Home: noted, no decision yet. */
  PENDING: 4,
  /** Home: the decision (a reply, or pushed when it is made). */
  DECIDED: 5,
  /** Source: decide, I want commit (the destination is ready) or abort. */
  DECIDE: 6,
  /** Either party after reconnecting: what is the decision? (re-attaches the session) */
  QUERY: 7,
} as const;
export type Arb = (typeof Arb)[keyof typeof Arb];

export type Role = 'source' | 'dest';

export interface ArbMessage {
  migration: string;
  role: Role;
  vmId?: string;
  to?: string;
  windowMs?: number;
  want?: Decision;
}

export const newMigrationId = (): string => randomBytes(16).toString('hex');

/** The default window: from the source's BEGIN to the last moment home may commit. */
export const DEFAULT_COMMIT_WINDOW_MS = 30_000;

/** Keepalive cadence on arbiter and migration channels while a party waits. */
export const KEEPALIVE_MS = 250;
// Generous: on a loaded host an event loop can stall for seconds, and a false "silent"
// only aborts a migration (safe, but needless).
export const SILENT_MS = 5_000;

export class ArbiterError extends RoamError {
  constructor(message: string, kind: 'peer' | 'timeout' = 'peer') {
    super('arbiter', message, { kind });
  }
}

/** Parse and check an arbiter message from the network (hostile bytes). */
export function parseArb(payload: Buffer): ArbMessage {
  const m = parseJson<Partial<ArbMessage>>(payload, 'arbiter');
  const ok =
    typeof m === 'object' &&
    m !== null &&
    typeof m.migration === 'string' &&
    /^[0-9a-f]{32}$/.test(m.migration) &&
    (m.role === 'source' || m.role === 'dest') &&
    (m.vmId === undefined || (typeof m.vmId === 'string' && m.vmId.length <= 64)) &&
    (m.to === undefined || (typeof m.to === 'string' && m.to.length <= 300)) &&
    (m.windowMs === undefined ||
      (Number.isInteger(m.windowMs) && m.windowMs > 0 && m.windowMs <= 3_600_000)) &&
    (m.want === undefined || m.want === 'commit' || m.want === 'abort');
  if (!ok) throw new ArbiterError('arbiter peer sent a malformed message');
  return m as ArbMessage;
}

/**
 * One party's session with home for one migration: a channel kept open with
 * keepalives, re-opened (QUERY re-attaches it) when it fails. `decision`
 * resolves once home has announced the decision, however it arrives.
 */
export class HomeSession {
  private ch: Channel | null = null;
  private connecting: Promise<Channel> | null = null;
  private got!: (d: Decision) => void;
  readonly decision: Promise<Decision> = new Promise((r) => (this.got = r));
  decided: Decision | null = null;
  private closed = false;
  /** The last failure, for messages. */
  lastError = '';
  /** Message types handed to an established session (home may have taken them). */
  readonly sent = new Set<Arb>();

  constructor(
    readonly home: string,
    private readonly psk: Buffer,
    readonly migration: string,
    readonly role: Role,
    private readonly log: (m: string) => void = () => {},
  ) {}

  /** Connect now (best effort), so that a later message does not wait for the handshake. */
  open(): void {
    this.channel(5_000).catch((err: Error) => (this.lastError = err.message));
  }

  private msg(extra: Partial<ArbMessage> = {}): Buffer {
    return json({ migration: this.migration, role: this.role, ...extra });
  }

  /** The open channel, connecting (and re-attaching with QUERY) if need be. */
  private async channel(timeoutMs: number): Promise<Channel> {
    if (this.ch) return this.ch;
    this.connecting ??= (async () => {
      const { host, port } = parseHostPort(this.home);
      const ch = await connectKeyed(host, port, { psk: this.psk, timeoutMs });
      ch.keepalive(KEEPALIVE_MS, SILENT_MS);
      this.ch = ch;
      void this.read(ch);
      return ch;
    })().finally(() => (this.connecting = null));
    return this.connecting;
  }

  private async read(ch: Channel): Promise<void> {
    try {
      for (;;) {
        const m = await ch.next();
        if (!m) throw new ArbiterError(`home ${this.home} closed the session`);
        if (m.type === Arb.DECIDED) this.learn(parseDecision(m.payload).decision);
        else if (m.type === Arb.BEGUN) this.onBegun();
      }
    } catch (err) {
      this.lastError = (err as Error).message;
      if (this.ch === ch) this.ch = null;
      ch.destroy();
    }
  }

  private learn(d: Decision): void {
    if (this.decided) return;
    this.decided = d;
    this.got(d);
  }

  /** Send one message on the session (connecting first); false if home could not be reached. */
  async send(type: Arb, extra: Partial<ArbMessage> = {}, timeoutMs = 2_000): Promise<boolean> {
    if (this.closed) return false;
    try {
      const ch = await this.channel(timeoutMs);
      const p = ch.send(type, this.msg(extra));
      this.sent.add(type);
      await withTimeout(p, timeoutMs, 'home did not take the message');
      return true;
    } catch (err) {
      this.lastError = (err as Error).message;
      this.ch?.destroy();
      this.ch = null;
      return false;
    }
  }

  /** BEGIN, and wait for home's BEGUN: resolves with the time it was heard (performance.now()). */
  async begin(vmId: string, to: string, windowMs: number, timeoutMs = 5_000): Promise<number> {
    const ch = await this.channel(timeoutMs).catch((err: Error) => {
      throw new ArbiterError(`cannot reach home ${this.home}: ${err.message}`);
    });
    // The reader loop takes DECIDED; BEGUN is the first reply, so wait for it here.
    const begun = new Promise<void>((ok, fail) => {
      const t = setTimeout(
        () => fail(new ArbiterError(`home ${this.home} did not answer BEGIN`, 'timeout')),
        timeoutMs,
      );
      this.onBegun = () => {
        clearTimeout(t);
        ok();
      };
      void this.decision.then(() => this.onBegun());
    });
    await ch.send(Arb.BEGIN, this.msg({ vmId, to, windowMs }));
    await begun;
    if (this.decided) throw new ArbiterError(`home ${this.home} refused the migration`);
    return performance.now();
  }

  private onBegun: () => void = () => {};

  /** Keep asking (re-sending `type`) until home announces the decision or `until()` (performance.now()) passes. */
  async await(
    type: Arb,
    extra: Partial<ArbMessage>,
    until: () => number,
  ): Promise<Decision | null> {
    while (!this.decided && !this.closed && performance.now() < until()) {
      if (!this.ch) {
        const sent = await this.send(type, extra);
        if (!sent) this.log(`home ${this.home} unreachable (${this.lastError}); retrying`);
      }
      await Promise.race([
        this.decision,
        sleep(Math.min(500, Math.max(0, until() - performance.now()))),
      ]);
    }
    return this.decided;
  }

  close(): void {
    this.closed = true;
    this.ch?.destroy();
    this.ch = null;
  }
}

/** The source as its own arbiter: the decision is a file, created exclusively, so there is only ever one. */
export function decideLocally(migration: string, want: Decision): Decision {
  const dir = path.join(roamHome(), 'decisions');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, migration);
  try {
    const fd = fs.openSync(file, 'wx', 0o600);
    try {
      fs.writeSync(fd, want);
      // Under a node daemon's permission model fsync is refused: the file then survives
      // this process (which is what a decision must outlive), not the host's power loss.
      try {
        fs.fsyncSync(fd);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ERR_ACCESS_DENIED') throw err;
      }
    } finally {
      fs.closeSync(fd);
    }
    return want;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const d = fs.readFileSync(file, 'utf8');
    return d === 'commit' ? 'commit' : 'abort';
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, rej) => {
      t = setTimeout(() => rej(new ArbiterError(what, 'timeout')), ms);
    }),
  ]).finally(() => clearTimeout(t));
}
