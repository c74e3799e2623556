// The destination's half of a migration: check the loader, then feed the
// checkpoint stream to a VmBuilder as it arrives (it compiles modules and fills
// memories during the pre-copy rounds) and build the VM once END has been
// verified. Nothing runs before that.
import { checkLoader } from './loader.js';
import { Refused, VmBuilder, type Built } from './builder.js';
import { WASM_FEATURES } from '../memory/features.js';
import { rehearse } from './rehearsal.js';
import { CheckpointError } from '../format/index.js';
import type { KernelOptions } from '../guest/kernel.js';
import { adoptPrepared } from '../wasm/prepare.js';
import type { Channel, Message } from './channel.js';
import { json, Msg, parseJson, type ArbiterInfo } from './protocol.js';
import { collectGarbage } from '../util/gc.js';

export interface ReceiveOptions {
  /** The loader hash this cstrap was started with (a boot token pins it in #4). */
  loaderHash?: string;
  /** WASM features this host offers (default: all roam needs). */
  features?: readonly string[];
  /** How long to wait for the source between messages. */
  idleTimeoutMs?: number;
  kernel: Omit<KernelOptions, 'dirs' | 'tcplisten' | 'vmId'>;
  onProgress?: (msg: string) => void;
  /** Called once a VM's header has arrived: the VM process warms what it will need after END (its control socket). */
  onHeader?: () => void;
  /** The source named the migration's arbiter (before the stream): the cstrap may reach it early. */
  onArbiter?: (a: ArbiterInfo) => void;
  /** The first message, already read (the cstrap looked whether it was a BOOT_URI). */
  first?: Message | null;
}

export interface Received extends Built {
  /** Who decides this migration (the source said so before the stream). */
  arbiter: ArbiterInfo;
}

/** The longest a round's answer waits for this side to be warm. */
const SETTLE_MAX_MS = 2000;

/** Stream bytes after which the destination collects garbage at the next round's end. */
const GC_AFTER_BYTES = 32 << 20;

export async function receiveVm(ch: Channel, o: ReceiveOptions): Promise<Received> {
  const idle = o.idleTimeoutMs ?? 30_000;
  const features = o.features ?? WASM_FEATURES;
  try {
    const first = o.first !== undefined ? o.first : await ch.next(idle);
    if (!first || first.type !== Msg.LOADER) throw new Refused('expected the loader first');
    const why = checkLoader(first.payload, o.loaderHash, features);
    if (why) throw new Refused(why);
    await ch.send(Msg.LOADER_OK);

    const builder: VmBuilder = new VmBuilder(features, undefined, {
      onHeader: () => o.onHeader?.(),
      // Build and throw away a small VM of the same modules now, so that the code the
      // END runs is compiled and warm when it comes (cold, it was most of the downtime).
      onCompiled: (mods): Promise<unknown> =>
        rehearse(mods, { build: builder.compiled }).catch((err: Error) =>
          o.onProgress?.(`rehearsal failed: ${err.message}`),
        ),
      onProgress: o.onProgress,
    });
    let sinceGc = 0;
    let arbiter: ArbiterInfo | null = null;
    while (!builder.ended) {
      const m = await ch.next(idle);
      if (!m)
        throw new CheckpointError(
          'truncated',
          'the source closed the connection before the end of the migration stream',
        );
      if (m.type === Msg.SYNC) {
        // A large round is in: collect its garbage now, while the source still runs,
        // rather than in a pause after END (the freeze may follow this round). Not
        // after small rounds: a full collection takes milliseconds, which would
        // lengthen every round of a small VM and make it harder to converge.
        if (sinceGc >= GC_AFTER_BYTES) {
          collectGarbage();
          sinceGc = 0;
        }
        // A round is answered once this side is warm (bounded: a slow warm-up only costs downtime).
        await Promise.race([builder.settled(), new Promise((r) => setTimeout(r, SETTLE_MAX_MS))]);
        await ch.send(Msg.SYNCED);
        continue;
      }
      if (m.type === Msg.ARBITER) {
        arbiter = checkArbiter(m.payload);
        o.onArbiter?.(arbiter);
        continue;
      }
      if (m.type === Msg.PREPARED) {
        adoptPrepared(m.payload); // one this roam cannot use is ignored: the module is prepared here then
        continue;
      }
      if (m.type !== Msg.STREAM)
        throw new Refused(`unexpected message ${m.type} during the stream`);
      sinceGc += m.payload.length;
      builder.push(m.payload);
    }
    if (!arbiter) throw new Refused('the source named no arbiter for this migration');
    return { ...(await builder.build(o.kernel)), arbiter };
  } catch (err) {
    const reason = (err as Error).message;
    // Tell the source why (best effort: the link may be what failed).
    await Promise.race([
      ch.send(Msg.REFUSE, json({ reason })).catch(() => undefined),
      new Promise((r) => setTimeout(r, 200)),
    ]);
    ch.destroy();
    throw err;
  }
}

/** The source's ARBITER message, checked (its bytes come from the network). */
function checkArbiter(payload: Buffer): ArbiterInfo {
  const a = parseJson<Partial<ArbiterInfo>>(payload, 'ARBITER');
  if (
    typeof a?.migration !== 'string' ||
    !/^[0-9a-f]{32}$/.test(a.migration) ||
    !(a.home === null || (typeof a.home === 'string' && a.home.length <= 300)) ||
    !(
      a.sessionKey === undefined ||
      (typeof a.sessionKey === 'string' && /^[0-9a-f]{64}$/.test(a.sessionKey))
    )
  )
    throw new Refused('the source sent a malformed ARBITER message');
  return { migration: a.migration, home: a.home, sessionKey: a.sessionKey };
}
