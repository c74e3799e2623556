// Hypercube boot (thesis 8.4, Figures 8.9-8.10): N empty cstraps boot the same
// image, but only the root pulls it from its source; every node that has it
// serves it on. Node i (0-based) that has the image serves i' = i | 2^d for each
// dimension d above i's highest bit, one after another, so that in round d every
// node of the (d)-cube copies to one node of the next: the source sends one copy
// and all N have it after ceil(log2 N) rounds. In the thesis the booted VM
// connected to the empty VMs of its sub-cube; here nobody accepts a connection it
// does not need: each cstrap is told (over its own upload channel, by whoever
// holds its key) which URI to pull from, and pulls (boot-uri.ts). The star boot,
// every node pulling from the source at once, is the peer the bench measures.
import { connectChannel, type Channel } from '../migrate/channel.js';
import { json, Msg, parseJson, type Have, type Started } from '../migrate/protocol.js';
import { formatHostPort, parseHostPort } from '../util/address.js';
import { RoamError } from '../util/errors.js';

export class HypercubeError extends RoamError {}

export interface HypercubeOptions {
  /** The image's boot URI (roam serve-image prints it). */
  from: string;
  /** The cstraps' upload addresses; node i is to[i]. */
  to: string[];
  psk: Buffer;
  /** Pin the image; without it the root's verified image pins it for the others. */
  sha256?: string;
  /** Every node pulls from `from` at once (the star topology), none serves on. */
  star?: boolean;
  /** The longest one node may take from being told to having the image, and again to running. */
  stepTimeoutMs?: number;
  onEvent?: (e: HypercubeEvent) => void;
}

export type HypercubeEvent =
  | { event: 'told'; node: number; cstrap: string; from: string; round: number }
  | {
      event: 'pulled';
      node: number;
      from: string;
      round: number;
      bytes: number;
      ms: number;
      serving: string | null;
    }
  | { event: 'running'; node: number; ms: number };

export interface NodeResult {
  node: number;
  cstrap: string;
  /** Where it pulled from: the source for the root (and every node of a star). */
  from: string;
  /** 0: from the source; r > 0: hypercube dimension r - 1. */
  round: number;
  bytes: number;
  /** Told → image in and verified (its own pull). */
  pullMs: number;
  /** Start of the boot → image in here. */
  haveMs: number;
  /** Start of the boot → its VM runs. */
  runningMs: number;
  serving: string | null;
}

export interface HypercubeResult {
  topology: 'hypercube' | 'star';
  nodes: NodeResult[];
  /** Copies the source was asked for. */
  fromSource: number;
  rounds: number;
  sha256: string;
  /** Start → every VM runs. */
  totalMs: number;
}

const bitLength = (i: number): number => (i === 0 ? 0 : 32 - Math.clz32(i));

interface Told {
  ch: Channel;
  have: Have;
  started: Promise<number>;
}

export async function bootHypercube(o: HypercubeOptions): Promise<HypercubeResult> {
  if (o.to.length === 0)
    throw new HypercubeError('no-cstraps', 'give at least one cstrap (--to HOST:PORT ...)', {
      kind: 'usage',
    });
  if (!/^http:\/\/\S{1,2000}$/.test(o.from))
    throw new HypercubeError(
      'bad-uri',
      `--from ${o.from} is not a boot URI (http://HOST:PORT/v1/image)`,
      {
        kind: 'usage',
      },
    );
  for (const c of o.to)
    try {
      parseHostPort(c);
    } catch (e) {
      throw new HypercubeError('bad-address', `--to ${c}: ${(e as Error).message}`, {
        kind: 'usage',
      });
    }
  const b = new Broadcast(o);
  try {
    await b.run();
  } finally {
    // Letting go of the upload channels lets every node stop serving the image.
    await Promise.all(b.channels.map((ch) => ch.end().catch(() => ch.destroy())));
  }
  const nodes = b.nodes;
  return {
    topology: o.star ? 'star' : 'hypercube',
    nodes,
    fromSource: nodes.filter((r) => r.from === o.from).length,
    rounds: Math.max(...nodes.map((r) => r.round)),
    sha256: b.sha256 ?? '',
    totalMs: Math.max(...nodes.map((r) => r.runningMs)),
  };
}

/** Promises awaited later: a rejection before then is not an unhandled one. */
const later = <T>(p: Promise<T>): Promise<T> => {
  p.catch(() => undefined);
  return p;
};

class Broadcast {
  readonly channels: Channel[] = [];
  readonly nodes: NodeResult[] = [];
  private readonly running: Promise<void>[] = [];
  sha256: string | undefined;
  private readonly t0 = performance.now();
  private readonly step: number;

  constructor(private readonly o: HypercubeOptions) {
    this.sha256 = o.sha256;
    this.step = o.stepTimeoutMs ?? 120_000;
  }

  async run(): Promise<void> {
    const o = this.o;
    if (o.star) await Promise.all(o.to.map((_, i) => this.boot(i, o.from, 0)));
    else await this.serveOn(0, this.serving(0, await this.boot(0, o.from, 0)));
    await Promise.all(this.running);
  }

  private serving(i: number, have: Have): string {
    if (have.serving || (i | (1 << bitLength(i))) >= this.o.to.length) return have.serving ?? '';
    throw new HypercubeError(
      'not-serving',
      `node ${i} (${this.o.to[i]}) does not serve the image on`,
      { kind: 'peer' },
    );
  }

  /** Tell node i to pull from `uri`; resolves once it has the image (its VM starts after). */
  private async boot(i: number, uri: string, round: number): Promise<Have> {
    const o = this.o;
    o.onEvent?.({ event: 'told', node: i, cstrap: o.to[i], from: uri, round });
    const opts = { psk: o.psk, sha256: this.sha256, serve: !o.star, step: this.step };
    const told = await tell(o.to[i], i, uri, opts, this.channels);
    this.sha256 ??= told.have.sha256;
    const r: NodeResult = {
      node: i,
      cstrap: o.to[i],
      from: uri,
      round,
      bytes: told.have.bytes,
      pullMs: told.have.pullMs,
      haveMs: performance.now() - this.t0,
      runningMs: NaN,
      serving: told.have.serving,
    };
    this.nodes[i] = r;
    const { bytes, pullMs: ms, serving } = r;
    o.onEvent?.({ event: 'pulled', node: i, from: uri, round, bytes, ms, serving });
    this.running.push(
      later(
        told.started.then((at) => {
          r.runningMs = at - this.t0;
          o.onEvent?.({ event: 'running', node: i, ms: r.runningMs });
        }),
      ),
    );
    return told.have;
  }

  /** Node i, which has the image (served at `uri`), serves its sub-cube: one child per dimension, in turn. */
  private async serveOn(i: number, uri: string): Promise<void> {
    const subs: Promise<void>[] = [];
    for (let d = bitLength(i); (i | (1 << d)) < this.o.to.length; d++) {
      const c = i | (1 << d);
      const have = await this.boot(c, uri, d + 1);
      subs.push(later(this.serveOn(c, this.serving(c, have))));
    }
    await Promise.all(subs);
  }
}

/** A HAVE message, checked (it comes from a cstrap, and its URI is handed to others). */
export function parseHave(p: Buffer): Have {
  const h = parseJson<Partial<Have>>(p, 'HAVE');
  if (
    typeof h?.sha256 !== 'string' ||
    !/^[0-9a-f]{64}$/.test(h.sha256) ||
    typeof h.bytes !== 'number' ||
    typeof h.pullMs !== 'number' ||
    !(
      h.serving === null ||
      (typeof h.serving === 'string' && /^http:\/\/\S{1,300}$/.test(h.serving))
    )
  )
    throw new HypercubeError('protocol', 'a cstrap sent a malformed HAVE message', {
      kind: 'peer',
    });
  return { sha256: h.sha256, bytes: h.bytes, pullMs: h.pullMs, serving: h.serving };
}

/** Connect to a cstrap's upload channel, send BOOT_URI, and wait for HAVE (STARTED comes later). */
async function tell(
  cstrap: string,
  i: number,
  uri: string,
  o: { psk: Buffer; sha256?: string; serve: boolean; step: number },
  channels: Channel[],
): Promise<Told> {
  const { host, port } = parseHostPort(cstrap);
  const ch = await connectChannel(host, port, { psk: o.psk, timeoutMs: 10_000 }).catch(
    (e: Error) => {
      throw new HypercubeError('unreachable', `node ${i} (${cstrap}): ${e.message}`, {
        kind: 'peer',
      });
    },
  );
  channels.push(ch);
  await ch.send(
    Msg.BOOT_URI,
    json({
      uri,
      kind: 'image',
      sha256: o.sha256,
      serve: o.serve ? formatHostPort(host, 0) : undefined,
    }),
  );
  const have = parseHave(await expect(ch, Msg.HAVE, i, cstrap, o.step));
  const started = expect(ch, Msg.STARTED, i, cstrap, o.step).then((p) => {
    parseJson<Started>(p, 'STARTED');
    return performance.now();
  });
  started.catch(() => undefined); // awaited by the caller; a failure before that is not unhandled
  return { ch, have, started };
}

async function expect(
  ch: Channel,
  type: Msg,
  i: number,
  cstrap: string,
  ms: number,
): Promise<Buffer> {
  const what = `node ${i} (${cstrap})`;
  const m = await ch.next(ms).catch((e: Error) => {
    throw new HypercubeError('timeout', `${what}: ${e.message}`, { kind: 'timeout' });
  });
  if (m?.type === type) return m.payload;
  if (m?.type === Msg.REFUSE)
    throw new HypercubeError(
      'refused',
      `${what} refused: ${parseJson<{ reason?: string }>(m.payload, 'REFUSE').reason ?? '?'}`,
    );
  throw new HypercubeError(
    'protocol',
    `${what} ${m ? `sent message ${m.type}` : 'closed the connection'} instead of ${Msg[type]}`,
    { kind: 'peer' },
  );
}
