// Messages of a migration, carried over the encrypted channel (channel.ts):
//
//   source                                   destination (cstrap)
//   LOADER (manifest) ───────────────────▶   check pinned hash, kernel, features
//                     ◀─────────────────── LOADER_OK | REFUSE
//   ARBITER (migration id, home or none) ▶   who decides this migration
//   PREPARED (instrumented modules) ─────▶   into its module cache (no Binaryen there)
//   STREAM (checkpoint stream chunks) ───▶   decode, compile modules early
//   SYNC (end of each round) ────────────▶
//                     ◀─────────────────── SYNCED
//   ... pre-copy rounds, freeze, END ────▶   verify, build the VM (not started)
//                     ◀─────────────────── READY    (a complete, verified VM is held here)
//   the arbiter decides, durably, once: commit or abort (commit.ts, arbiter.ts)
//   DECISION (commit | abort) ───────────▶   commit: the destination runs; abort: discarded
//                     ◀─────────────────── STARTED  (time of its first instruction)
//
// The destination runs only on a commit, the source unfences only on an abort;
// a destination that refuses sends REFUSE with the reason and closes. Both ends
// send keepalives while they wait, so a silent link is noticed (channel.ts).
import { RoamError } from '../util/errors.js';

export enum Msg {
  LOADER = 1,
  LOADER_OK = 2,
  STREAM = 3,
  CONFIRM = 4,
  STARTED = 5,
  REFUSE = 6,
  /** Source: tell me when you have taken in everything before this. */
  SYNC = 7,
  /** Destination: I have. */
  SYNCED = 8,
  /** Source: a module as this roam prepared it (src/wasm/prepare.ts packPrepared). */
  PREPARED = 9,
  /** Source: this migration's id and its arbiter. */
  ARBITER = 10,
  /** Destination: the whole stream is in, verified, and the VM built; it waits for the decision. */
  READY = 11,
  /** The arbiter's decision (from the source, or on a resolving connection). */
  DECISION = 12,
  // A cstrap told where to pull from instead of being uploaded into (boot-uri.ts):
  /** Customer or agent, first on the upload channel instead of LOADER: pull from this boot URI. */
  BOOT_URI = 13,
  /** Cstrap: the image is in and verified (and served on at this URI, if asked). */
  HAVE = 14,
  /** Cstrap: the VM it pulled runs. */
  RUNNING = 15,
  // A boot image served over roam-image/1 (image-pull.ts), after LOADER / LOADER_OK:
  /** Server: the image's size and SHA-256. */
  IMAGE_INFO = 16,
  /** Server: a chunk of the image. */
  IMAGE = 17,
  /** Server: that was all of it. */
  IMAGE_END = 18,
  /** Puller: received whole, hash and MAC verified. */
  IMAGE_OK = 19,
}

export type Decision = 'commit' | 'abort';

export interface ArbiterInfo {
  /** 32 hex digits, fresh per migration. */
  migration: string;
  /** HOST:PORT of the home that decides, or null: the source decides (commit.ts). */
  home: string | null;
  /**
   * A VM of that home, migrating: its session's key (hex), so that the destination
   * opens the session while the pages arrive (the same key is in the VM's state).
   */
  sessionKey?: string;
}

export interface Ready {
  vmId: string;
}

export interface DecisionMsg {
  migration: string;
  decision: Decision;
}

/** A decision message, checked: anything else is refused (the bytes come from the network). */
export function parseDecision(payload: Buffer): DecisionMsg {
  const d = parseJson<Partial<DecisionMsg>>(payload, 'DECISION');
  if (
    typeof d?.migration !== 'string' ||
    !/^[0-9a-f]{32}$/.test(d.migration) ||
    (d.decision !== 'commit' && d.decision !== 'abort')
  )
    throw new MalformedMessage('DECISION');
  return { migration: d.migration, decision: d.decision };
}

/** BOOT_URI: what a cstrap is told to pull, instead of being uploaded into. */
export interface BootUri {
  uri: string;
  /** A VM serving itself (a pull migration), or a boot image (a checkpoint file) served by anyone. */
  kind: 'vm' | 'image';
  /** An image's pinned SHA-256: anything else is refused. */
  sha256?: string;
  /** Serve the image on at this HOST:PORT once it is in (hypercube boot). */
  serve?: string;
}

/** A BOOT_URI message, checked (it comes from the network, if from a key holder). */
export function parseBootUri(payload: Buffer): BootUri {
  const b = parseJson<Partial<BootUri>>(payload, 'BOOT_URI');
  const ok =
    typeof b?.uri === 'string' &&
    b.uri.length <= 2000 &&
    /^http:\/\/[^\s]+$/.test(b.uri) &&
    (b.kind === 'vm' || b.kind === 'image') &&
    (b.sha256 === undefined || (typeof b.sha256 === 'string' && /^[0-9a-f]{64}$/.test(b.sha256))) &&
    (b.serve === undefined || (typeof b.serve === 'string' && b.serve.length <= 300));
  if (!ok) throw new Error('the peer sent a malformed BOOT_URI message');
  return { uri: b.uri!, kind: b.kind!, sha256: b.sha256, serve: b.serve };
}

export interface Have {
  sha256: string;
  bytes: number;
  /** Where this cstrap serves the image on, or null. */
  serving: string | null;
  /** From BOOT_URI to the image verified here. */
  pullMs: number;
}

export interface Confirm {
  vmId: string;
}

/** Wall-clock times (ms since the epoch, sub-ms precision) at the destination. */
export interface Started {
  /** END of the stream received. */
  endAt: number;
  /** Stream verified (VERIFY). */
  verifiedAt: number;
  /** VM built (memories filled, modules instantiated). */
  builtAt: number;
  /** First guest instruction. */
  at: number;
}

export interface Refuse {
  reason: string;
}

export const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v), 'utf8');

/** A peer's message that does not parse (the bytes come from the network; found by fuzzing). */
export class MalformedMessage extends RoamError {
  constructor(what: string) {
    super('malformed-message', `migration peer sent a malformed ${what} message`);
  }
}

export function parseJson<T>(payload: Buffer, what: string): T {
  try {
    return JSON.parse(payload.toString('utf8')) as T;
  } catch {
    throw new MalformedMessage(what);
  }
}

/** Wall-clock now with sub-millisecond precision, comparable across processes on one host. */
export const wallNow = (): number => performance.timeOrigin + performance.now();

/**
 * The final copy's default budget, in link time. 20 ms keeps a small server's
 * downtime under DESIGN §6's 25 ms on 100 Mbit (the thesis allowed 50): the
 * cleaner throttles a program whose working set would take longer to send.
 */
export const DEFAULT_MAX_DOWNTIME_MS = 20;
