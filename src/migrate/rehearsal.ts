// The rehearsal. A migration's downtime is code that runs once: the source's
// freeze (save the kernel, write the last records) and the destination's END
// (verify, restore the kernel, wire up and instantiate each program). Run cold,
// V8 compiles each of those functions and import wrappers on first use, and
// that was most of the downtime. So both sides first checkpoint a throwaway VM
// of the same modules into memory — the destination also builds it from those
// bytes and throws it away — and the real freeze and END then run warm code.
// The throwaway VM never runs: its programs are paused, and it is never started.
import { VmBuilder } from './builder.js';
import { PageCleaner } from '../checkpoint/cleaner.js';
import { WASM_FEATURES } from '../memory/features.js';
import { streamTarget } from '../format/index.js';
import { Kernel } from '../guest/kernel.js';
import type { PreparedModule } from '../wasm/prepare.js';

/** Modules with a larger initial memory are left out: copying it would cost more than warming saves. */
const MAX_INITIAL_PAGES = 256; // 16 MiB

/** Pages of each program the rehearsal's freeze copies. */
const SNAPSHOT_PAGES = 16;

const quiet = (): void => {};
const QUIET = { log: quiet, stdout: quiet, stderr: quiet };

/**
 * Checkpoint a throwaway VM of `mods` the way a migration does; with `build`
 * (the destination's modules being compiled, by hash), also build a VM from it.
 */
export async function rehearse(
  mods: PreparedModule[],
  o: { build?: Map<string, Promise<PreparedModule>> } = {},
): Promise<void> {
  const use = mods.filter((m) => m.meta.initialPages <= MAX_INITIAL_PAGES);
  if (use.length === 0) return;
  const k = new Kernel({ vmId: 'rehearsal', ...QUIET });
  const chunks: Buffer[] = [];
  try {
    for (const m of use) k.scheduler.paused.add(k.spawn(m, ['rehearsal'], []).pid);
    const target = streamTarget((c) => void chunks.push(Buffer.from(c)), {
      transport: true,
      what: 'rehearsal',
    });
    // After round 0, mark some of the programs' pages dirty again (their contents
    // unchanged): the freeze then copies a snapshot buffer and sends it, as a real one does.
    const redirty = (): void => {
      for (const p of k.processes.values()) p.dirtyMap().fill(1, 0, SNAPSHOT_PAGES);
    };
    await new PageCleaner(k, target, {
      kind: 'migration',
      fence: true,
      strict: true,
      priority: true,
      throttle: true,
      onRound: redirty,
    }).run();
  } finally {
    k.close();
  }
  if (!o.build) return;
  const b = new VmBuilder(WASM_FEATURES, o.build);
  for (const c of chunks) b.push(c);
  await b.memoriesReady;
  (await b.build(QUIET)).kernel.close();
}
