// Builds a VM from a checkpoint stream as it arrives: each module is compiled as
// soon as its MODULE record is in (so compiling overlaps the pre-copy rounds
// instead of adding to the downtime), pages go straight into the memories the
// programs will use, and the VM is built once END has been verified. Nothing
// runs before that. The receiver feeds it a migration; the rehearsal a throwaway
// VM, so that the same code is warm when the real END comes.
import { Memories } from '../checkpoint/memories.js';
import { restoreVm } from '../checkpoint/restore.js';
import { CheckpointAssembler } from '../format/assemble.js';
import { CheckpointError, RecordDecoder, RecordType, type StreamHeader } from '../format/index.js';
import { newVmId, type Kernel, type KernelOptions } from '../guest/kernel.js';
import { prepare, type PreparedModule } from '../wasm/prepare.js';
import { wallNow } from './protocol.js';
import { RoamError } from '../util/errors.js';

/** A refusal we tell the source about before closing. */
export class Refused extends RoamError {
  constructor(message: string) {
    super('refused', message);
  }
}

export interface Built {
  kernel: Kernel;
  header: StreamHeader;
  bytes: number;
  /** Wall-clock milestones after the last byte: END seen, stream verified, VM built. */
  times: { endAt: number; verifiedAt: number; builtAt: number };
}

function* everyPage(spaces: Map<number, Map<number, Buffer>>): Generator<[number, number, Buffer]> {
  for (const [slot, pages] of spaces) for (const [page, data] of pages) yield [slot, page, data];
}

export class VmBuilder {
  // The channel authenticates each frame and their order: the stream carries no digest of its own.
  private readonly dec = new RecordDecoder({ name: 'migration stream', transport: true });
  private readonly asm = new CheckpointAssembler(true, true, true);
  private readonly memories = new Memories();
  private building = false;
  private endAt = 0;
  private memoriesStarted!: () => void;
  /** Resolves once the modules are compiled and pages go into program memories. */
  readonly memoriesReady = new Promise<void>((r) => (this.memoriesStarted = r));
  private warm: Promise<unknown> = Promise.resolve();

  /**
   * Resolves once what the stream so far needs is ready here: its modules compiled
   * and what onCompiled returned (the rehearsal) done. The receiver answers a round
   * only then, so that a small VM, whose rounds are over in milliseconds, is not
   * frozen while this side is still warming up (that wait would be downtime).
   */
  settled(): Promise<void> {
    if (!this.building) return Promise.resolve();
    return this.memoriesReady.then(() => this.warm).then(() => undefined);
  }

  constructor(
    private readonly features: readonly string[],
    /** Modules being prepared, by hash (shared with a rehearsal, which then compiles nothing). */
    readonly compiled = new Map<string, Promise<PreparedModule>>(),
    private readonly hooks: {
      onHeader?: (h: StreamHeader) => void;
      /** Every module of the stream is compiled (and the memories are being built); may return work to wait for (see settled). */
      onCompiled?: (mods: PreparedModule[]) => Promise<unknown> | void;
      onProgress?: (msg: string) => void;
    } = {},
  ) {}

  get ended(): boolean {
    return this.dec.ended;
  }

  get bytes(): number {
    return this.dec.bytes;
  }

  /** Take in the next piece of the stream (throws on anything wrong with it). */
  push(chunk: Buffer): void {
    const { asm, memories } = this;
    for (const rec of this.dec.push(chunk)) {
      asm.add(rec);
      if (rec.type === RecordType.HEADER) {
        const missing = asm.header!.features.filter((f) => !this.features.includes(f));
        if (missing.length)
          throw new Refused(`this host lacks WASM feature(s) the VM needs: ${missing.join(', ')}`);
        this.hooks.onHeader?.(asm.header!);
      } else if (rec.type === RecordType.SPACES) {
        memories.reserve(asm.spaceSizes);
      } else if (rec.type === RecordType.PAGES && !this.building) {
        // Modules come before pages: once they are compiled we know what memory
        // they accept, and the pages go straight into it from then on.
        this.building = true;
        Promise.all(this.compiled.values()).then(
          (mods) => {
            memories.start(
              mods.map((m) => ({
                maximum: m.meta.maxPages + m.meta.regionPages,
                region: m.meta.regionPages,
              })),
              everyPage(asm.spaces),
            );
            // From here on a program's pages live only in its memory: the records they
            // came in are garbage at once, and nothing is copied again at the end.
            for (const slot of asm.spaces.keys()) if (memories.holds(slot)) asm.spaces.delete(slot);
            asm.onPage = (slot, page, data) => memories.put(slot, page, data);
            this.warm = Promise.resolve(this.hooks.onCompiled?.(mods)).catch(() => undefined);
            this.memoriesStarted();
          },
          () => this.memoriesStarted(), // the build reports the module's error
        );
      } else if (rec.type === RecordType.MODULE) {
        for (const [hash, bytes] of asm.modules) {
          if (this.compiled.has(hash)) continue;
          this.hooks.onProgress?.(`compiling module ${hash.slice(0, 12)} while the pages arrive`);
          const p = prepare(bytes);
          p.catch(() => undefined); // reported when the module is needed
          this.compiled.set(hash, p);
        }
      }
    }
    if (this.dec.ended) this.endAt = wallNow();
  }

  /** Verify the whole stream and build the VM (not started). */
  async build(opts: Omit<KernelOptions, 'dirs' | 'tcplisten' | 'vmId'>): Promise<Built> {
    if (!this.dec.ended)
      throw new CheckpointError(
        'truncated',
        'the source closed the connection before the end of the migration stream',
      );
    const cp = this.asm.result('stream', this.dec.bytes, false);
    const verifiedAt = wallNow();
    const vmId = cp.header.kind === 'fork' ? newVmId() : cp.header.vmId;
    const kernel = await restoreVm(
      cp,
      { ...opts, vmId },
      (hash) => this.compiled.get(hash),
      (slot) => this.memories.take(slot),
    );
    // A fork's child is another VM: the parent keeps the home session and its clients.
    if (cp.header.kind === 'fork') kernel.relay?.disown();
    return {
      kernel,
      header: cp.header,
      bytes: this.dec.bytes,
      times: { endAt: this.endAt, verifiedAt, builtAt: wallNow() },
    };
  }
}
