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
  const n = o.to.length;
  if (n === 0)
    throw new HypercubeError('no-cstraps', 'give at least one cstrap (--to HOST:PORT ...)', {
      kind: 'usage',
    });
  const step = o.stepTimeoutMs ?? 120_000;
  const t0 = performance.now();
  const channels: Channel[] = [];
  const nodes: NodeResult[] = [];
  const running: Promise<void>[] = [];
  let sha256 = o.sha256;
  const emit = (e: HypercubeEvent): void => o.onEvent?.(e);

  /** Tell node i to pull from `uri`; resolves once it has the image (its VM starts after). */
  const boot = async (i: number, uri: string, round: number): Promise<Have> => {
    emit({ event: 'told', node: i, cstrap: o.to[i], from: uri, round });
    const told = await tell(
      o.to[i],
      i,
      uri,
      { psk: o.psk, sha256, serve: !o.star, step },
      channels,
    );
    sha256 ??= told.have.sha256;
    const haveMs = performance.now() - t0;
    const r: NodeResult = {
      node: i,
      cstrap: o.to[i],
      from: uri,
      round,
      bytes: told.have.bytes,
      pullMs: told.have.pullMs,
      haveMs,
      runningMs: NaN,
      serving: told.have.serving,
    };
    nodes[i] = r;
    emit({
      event: 'pulled',
      node: i,
      from: uri,
      round,
      bytes: r.bytes,
      ms: r.pullMs,
      serving: r.serving,
    });
    running.push(
      told.started.then((at) => {
        r.runningMs = at - t0;
        emit({ event: 'running', node: i, ms: r.runningMs });
      }),
    );
    return told.have;
  };

  /** Node i, which has the image (served at `uri`), serves its sub-cube: one child per dimension, in turn. */
  const serveOn = async (i: number, uri: string): Promise<void> => {
    const subs: Promise<void>[] = [];
    for (let d = bitLength(i); (i | (1 << d)) < n; d++) {
      const c = i | (1 << d);
      const have = await boot(c, uri, d + 1);
      if (!have.serving)
        throw new HypercubeError(
          'not-serving',
          `node ${c} (${o.to[c]}) does not serve the image on`,
          { kind: 'peer' },
        );
      subs.push(serveOn(c, have.serving));
    }
    await Promise.all(subs);
  };

  try {
    if (o.star) await Promise.all(o.to.map((_, i) => boot(i, o.from, 0)));
    else {
      const root = await boot(0, o.from, 0);
      if (n > 1 && !root.serving)
        throw new HypercubeError(
          'not-serving',
          `the root (${o.to[0]}) does not serve the image on`,
          { kind: 'peer' },
        );
      await serveOn(0, root.serving ?? '');
    }
    await Promise.all(running);
  } finally {
    // Letting go of the upload channels lets every node stop serving the image.
    await Promise.all(channels.map((ch) => ch.end().catch(() => ch.destroy())));
  }
  return {
    topology: o.star ? 'star' : 'hypercube',
    nodes,
    fromSource: nodes.filter((r) => r.from === o.from).length,
    rounds: Math.max(...nodes.map((r) => r.round)),
    sha256: sha256 ?? '',
    totalMs: Math.max(...nodes.map((r) => r.runningMs)),
  };
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
  const have = JSON.parse((await expect(ch, Msg.HAVE, i, cstrap, o.step)).toString('utf8')) as Have;
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
