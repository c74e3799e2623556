// The destination's half of a migration: check the loader, take the checkpoint
// stream as it arrives, compile each module as soon as its MODULE record is in
// (so compiling overlaps the pre-copy rounds instead of adding to the downtime),
// and build the VM once END has been verified. Nothing runs before that.
import { checkLoader } from './loader.js';
import { Memories } from './memories.js';
import { restoreVm } from '../checkpoint/restore.js';
import { WASM_FEATURES } from '../checkpoint/cleaner.js';
import { CheckpointAssembler } from '../format/assemble.js';
import { CheckpointError, RecordDecoder, RecordType, type StreamHeader } from '../format/index.js';
import type { Kernel, KernelOptions } from '../guest/kernel.js';
import { newVmId } from '../guest/vm.js';
import { adoptPrepared, prepare, type PreparedModule } from '../wasm/prepare.js';
import type { Channel } from '../migrate/channel.js';
import { json, Msg, wallNow } from '../migrate/protocol.js';
import { collectGarbage } from '../util/gc.js';
import { warmControl } from '../guest/control.js';

export interface ReceiveOptions {
  /** The loader hash this cstrap was started with (a boot token pins it in #4). */
  loaderHash?: string;
  /** WASM features this host offers (default: all roam needs). */
  features?: readonly string[];
  /** How long to wait for the source between messages. */
  idleTimeoutMs?: number;
  kernel: Omit<KernelOptions, 'dirs' | 'tcplisten' | 'vmId'>;
  onProgress?: (msg: string) => void;
}

export interface Received {
  kernel: Kernel;
  header: StreamHeader;
  bytes: number;
  /** Wall-clock milestones after the last byte: END seen, stream verified, VM built. */
  times: { endAt: number; verifiedAt: number; builtAt: number };
}

function* everyPage(spaces: Map<number, Map<number, Buffer>>): Generator<[number, number, Buffer]> {
  for (const [slot, pages] of spaces) for (const [page, data] of pages) yield [slot, page, data];
}

/** Stream bytes after which the destination collects garbage at the next round's end. */
const GC_AFTER_BYTES = 32 << 20;

/** A refusal we tell the source about before closing. */
export class Refused extends Error {}

export async function receiveVm(ch: Channel, o: ReceiveOptions): Promise<Received> {
  const idle = o.idleTimeoutMs ?? 30_000;
  const features = o.features ?? WASM_FEATURES;
  try {
    const first = await ch.next(idle);
    if (!first || first.type !== Msg.LOADER) throw new Refused('expected the loader first');
    const why = checkLoader(first.payload, o.loaderHash, features);
    if (why) throw new Refused(why);
    await ch.send(Msg.LOADER_OK);

    // The channel authenticates each frame and their order: the stream carries no digest of its own.
    const dec = new RecordDecoder({ name: 'migration stream', transport: true });
    const asm = new CheckpointAssembler(true, true);
    const compiled = new Map<string, Promise<PreparedModule>>();
    const memories = new Memories();
    let building = false;
    let sinceGc = 0;
    while (!dec.ended) {
      const m = await ch.next(idle);
      if (!m) throw new CheckpointError('truncated', 'the source closed the connection before the end of the migration stream');
      if (m.type === Msg.SYNC) {
        // A large round is in: collect its garbage now, while the source still runs,
        // rather than in a pause after END (the freeze may follow this round). Not
        // after small rounds: a full collection takes milliseconds, which would
        // lengthen every round of a small VM and make it harder to converge.
        if (sinceGc >= GC_AFTER_BYTES) {
          collectGarbage();
          sinceGc = 0;
        }
        await ch.send(Msg.SYNCED);
        continue;
      }
      if (m.type === Msg.PREPARED) {
        adoptPrepared(m.payload); // one this roam cannot use is ignored: the module is prepared here then
        continue;
      }
      if (m.type !== Msg.STREAM) throw new Refused(`unexpected message ${m.type} during the stream`);
      sinceGc += m.payload.length;
      for (const rec of dec.push(m.payload)) {
        asm.add(rec);
        if (rec.type === RecordType.HEADER) {
          const missing = asm.header!.features.filter((f) => !features.includes(f));
          if (missing.length) throw new Refused(`this host lacks WASM feature(s) the VM needs: ${missing.join(', ')}`);
          warmControl();
        } else if (rec.type === RecordType.SPACES) {
          memories.reserve(asm.spaceSizes);
        } else if (rec.type === RecordType.PAGES && !building) {
          // Modules come before pages: once they are compiled we know what memory
          // they accept, and the pages go straight into it from then on.
          building = true;
          Promise.all(compiled.values()).then(
            (mods) => {
              memories.start(mods.map((m) => ({ maximum: m.meta.maxPages + m.meta.regionPages, region: m.meta.regionPages })), everyPage(asm.spaces));
              // From here on a program's pages live only in its memory: the records they
              // came in are garbage at once, and nothing is copied again at the end.
              for (const slot of asm.spaces.keys()) if (memories.holds(slot)) asm.spaces.delete(slot);
              asm.onPage = (slot, page, data) => memories.put(slot, page, data);
            },
            () => undefined, // the restore reports the module's error
          );
        } else if (rec.type === RecordType.MODULE) {
          for (const [hash, bytes] of asm.modules) {
            if (compiled.has(hash)) continue;
            o.onProgress?.(`compiling module ${hash.slice(0, 12)} while the pages arrive`);
            const p = prepare(bytes);
            p.catch(() => undefined); // reported when the module is needed
            compiled.set(hash, p);
          }
        }
      }
    }
    const endAt = wallNow();
    const cp = asm.result('stream', dec.bytes, false);
    const verifiedAt = wallNow();
    const vmId = cp.header.kind === 'fork' ? newVmId() : cp.header.vmId;
    const kernel = await restoreVm(cp, { ...o.kernel, vmId }, (hash) => compiled.get(hash), (slot) => memories.take(slot));
    return { kernel, header: cp.header, bytes: dec.bytes, times: { endAt, verifiedAt, builtAt: wallNow() } };
  } catch (err) {
    const reason = (err as Error).message;
    // Tell the source why (best effort: the link may be what failed).
    await Promise.race([ch.send(Msg.REFUSE, json({ reason })).catch(() => undefined), new Promise((r) => setTimeout(r, 200))]);
    ch.destroy();
    throw err;
  }
}

