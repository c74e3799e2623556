// The page cleaner (thesis 6.3.1): copies a running VM's pages to a target over
// several rounds while its programs keep running, then freezes it briefly for the
// last dirty pages (the snapshot buffer) and the kernel state.
//
// Round 0 sends every non-zero page. Each later round takes the pages dirtied
// since the previous one (the transmit vector) and clears their dirty bits; a page
// that is dirtied again before the cleaner reaches it is postponed to the next
// round rather than sent twice (hot pages). When the writable working set fits in
// the snapshot buffer — 64 pages, growing linearly each round — the final phase
// begins. The freeze itself is one synchronous turn of the event loop: every
// program is already at a safepoint between time slices.
import { countDirty, dirtyPages, type FrameSpace } from '../memory/frames.js';
import { WASM_FEATURES } from '../memory/features.js';
import {
  computeVerify,
  FORMAT_VERSION,
  isZeroPage,
  PageDigests,
  pageDigest,
  PRESENT,
  type CheckpointTarget,
  type PageEntry,
} from '../format/index.js';
import { KERNEL_VERSION, type Kernel } from '../guest/kernel.js';
import { Process } from '../guest/process.js';
import { Throttle } from './throttle.js';
import { VmExited } from './errors.js';
import { compareWithLive, liveDigests } from './freeze-check.js';

import type { CheckpointResult, CleanerOptions, RoundStats } from './report.js';
export type { CheckpointResult, CleanerOptions, RoundProgress, RoundStats } from './report.js';

/** Below this share of the CPU the programs mostly wait (a server): the cleaner takes short turns. */
const SHORT_TURN_DUTY = 0.25;
const nextTurn = () => new Promise<void>((r) => setImmediate(r));

export class PageCleaner {
  /** Digest of what the target holds for each page (absent = zero there), and VERIFY's running page sum. */
  private readonly sent = new PageDigests();
  private pagesSent = 0;
  private workStart = performance.now();
  private readonly o: Required<Omit<CleanerOptions, 'onRound' | 'onProgress' | 'beforeFreeze'>> &
    Pick<CleanerOptions, 'onRound' | 'onProgress' | 'beforeFreeze'>;
  private readonly throttle: Throttle | null;
  private frozenSends = false;
  /** Wall-clock time of the freeze (performance.timeOrigin-based ms), once frozen. */
  frozenAt = 0;

  constructor(
    private readonly kernel: Kernel,
    private readonly target: CheckpointTarget,
    opts: CleanerOptions = {},
  ) {
    this.o = {
      kind: 'checkpoint',
      maxRounds: 30,
      bufferStart: 64,
      bufferStep: 64,
      batchPages: 1024,
      workMs: 20,
      shortWorkMs: opts.workMs ?? 20,
      verifyAtFreeze: false,
      fence: false,
      keepFencedOnError: false,
      bufferLimit: Infinity,
      throttle: false,
      strict: false,
      priority: false,
      // An option given as undefined keeps its default (a migration home ordered
      // passed maxRounds: undefined, which made every round "not out of rounds"
      // and stopped throttling: it aborted instead of converging).
      ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
    };
    this.throttle = this.o.throttle ? new Throttle(kernel.scheduler) : null;
    this.warmed = !this.o.beforeFreeze;
    this.o.beforeFreeze?.then(
      () => (this.warmed = true),
      (err: Error) => {
        this.warmed = true;
        this.gateError = err;
      },
    );
  }
  /** beforeFreeze has settled. */
  private warmed: boolean;
  /** beforeFreeze failed: there is no freeze (a migration's arbiter could not be reached). */
  private gateError: Error | undefined;

  private limit(): number {
    const l = this.o.bufferLimit;
    return typeof l === 'function' ? l() : l;
  }

  private spaces(): FrameSpace[] {
    return this.kernel.frameSpaces();
  }

  private setTracking(on: boolean): void {
    for (const s of this.spaces()) if (s instanceof Process) s.switchTo(on ? 'tracked' : 'plain');
  }

  /** Send one page as it is now; returns false if it was zero and the target already has zero. */
  private entry(slot: number, page: number, data: Uint8Array): PageEntry | null {
    if (isZeroPage(data)) {
      if (!this.sent.has(slot, page)) return null;
      this.sent.set(slot, page, null);
      return { slot, page, data: null };
    }
    // A transport stream's VERIFY counts pages, not their bytes; --verify needs the bytes' digests.
    this.sent.set(
      slot,
      page,
      this.target.presenceVerify && !this.o.verifyAtFreeze ? PRESENT : pageDigest(data),
    );
    return { slot, page, data };
  }

  private async flush(batch: PageEntry[]): Promise<void> {
    if (batch.length === 0) return;
    await this.target.pages(batch);
    this.pagesSent += batch.length;
    batch.length = 0;
    // Work at least twice as long as the programs' last slice: a program sweeping a
    // large array may run far past its 10 ms to its next safepoint, and the cleaner
    // must still get two thirds of the CPU.
    const s = this.kernel.scheduler;
    const turn = s.duty < SHORT_TURN_DUTY ? this.o.shortWorkMs : this.o.workMs;
    if (
      !this.frozenSends &&
      performance.now() - this.workStart >= Math.max(turn, 2 * s.lastSliceMs)
    ) {
      await this.yieldToPrograms();
    }
  }

  /** Let the programs run one slice. */
  private async yieldToPrograms(): Promise<void> {
    if (this.o.priority) this.kernel.scheduler.release();
    await nextTurn();
    if (this.o.priority) this.kernel.scheduler.hold();
    this.workStart = performance.now();
  }

  async run(): Promise<CheckpointResult> {
    const t0 = performance.now();
    const rounds: RoundStats[] = [];
    this.setTracking(true);
    if (this.o.priority) this.kernel.scheduler.hold();
    this.workStart = performance.now();
    try {
      for (const s of this.spaces()) s.dirtyMap().fill(0);
      await this.target.begin(
        this.header(),
        this.kernel.modules().map((m) => m.original),
      );
      let round = 0;
      for (; ; round++) {
        const tr = performance.now();
        const bytes0 = this.target.bytesWritten;
        const { sent, postponed } = await this.sendRound(round);
        // Until the receiver has taken in the round, it is not over: what waits in
        // socket buffers or a slow link's queue would otherwise land after the freeze.
        await this.target.drain?.();
        await this.yieldToPrograms();
        const dirty = this.dirtyCounts();
        let wss = 0;
        for (const n of dirty.values()) wss += n;
        const want = this.o.bufferStart + this.o.bufferStep * round;
        const limit = this.limit();
        const buffer = Math.min(want, limit);
        const prev = rounds[rounds.length - 1];
        const stats: RoundStats = {
          round,
          sent,
          postponed,
          wss,
          buffer,
          bytes: this.target.bytesWritten - bytes0,
          ms: performance.now() - tr,
          throttled: this.throttle?.describe() ?? {},
        };
        rounds.push(stats);
        this.o.onRound?.(stats);
        if (wss <= buffer) {
          // The working set fits; if the freeze's code is still being warmed, go on
          // with short rounds meanwhile (waiting idle would let the WSS grow).
          if (!this.warmed) {
            await Promise.race([this.o.beforeFreeze, new Promise((r) => setTimeout(r, 2))]);
            continue;
          }
          break;
        }
        // The programs dirty pages about as fast as they are copied (more rounds would
        // not shrink the final copy), or the buffer has reached its limit.
        const stalled = round >= 2 && prev !== undefined && wss >= prev.wss * 0.95;
        const outOfRounds = round + 1 >= this.o.maxRounds;
        if (!stalled && want < limit && !outOfRounds) continue;
        if (this.throttle?.tighten(dirty) && round + 1 < 2 * this.o.maxRounds) continue;
        if (!this.o.strict) break;
        throw new Error(
          `migration aborted: the writable working set (${wss} pages) does not fit the snapshot-buffer limit (${limit === Infinity ? want : limit} pages) after ${round + 1} rounds` +
            (this.throttle ? '' : '; enable throttling or allow a longer downtime'),
        );
      }
      if (this.gateError) throw this.gateError;
      return await this.finalPhase(t0, rounds);
    } catch (err) {
      this.frozenSends = false;
      this.kernel.scheduler.release();
      this.setTracking(false);
      this.throttle?.release();
      if (this.o.fence && !this.o.keepFencedOnError) this.kernel.unfence();
      await this.target.abort(err as Error);
      throw err;
    }
  }

  /** One pre-copy round: every non-zero page (round 0), then the transmit vector less its hot pages. */
  private async sendRound(round: number): Promise<{ sent: number; postponed: number }> {
    let sent = 0,
      postponed = 0;
    const batch: PageEntry[] = [];
    const t0 = performance.now();
    const bytes0 = this.target.bytesWritten;
    let reported = t0,
      seen = 0,
      of = 0;
    const report = (): void => {
      const now = performance.now();
      if (!this.o.onProgress || now - reported < 250) return;
      reported = now;
      const bytes = this.target.bytesWritten - bytes0;
      this.o.onProgress({ round, sent, bytes, ms: now - t0, seen, of });
    };
    if (round === 0 && this.target.sizes) {
      const sizes: Record<number, number> = {};
      for (const space of this.spaces()) sizes[space.slot] = space.pageCount();
      await this.target.sizes(sizes);
    }
    // The transmit vectors: last round's dirty vectors, which start afresh. Taken
    // for every space up front, so the round knows how many pages it looks at (ETA).
    const plan = this.spaces().map((space) => ({
      space,
      transmit:
        round === 0
          ? Array.from({ length: space.pageCount() }, (_, i) => i)
          : dirtyPages(space.dirtyMap(), true),
    }));
    for (const p of plan) of += p.transmit.length;
    for (const { space, transmit } of plan) {
      for (const i of transmit) {
        seen++;
        // A hot page, dirtied again before the cleaner got to it: next round.
        if (round > 0 && space.dirtyMap()[i]) {
          postponed++;
          continue;
        }
        const e = this.entry(space.slot, i, space.page(i));
        if (!e) continue;
        batch.push(e);
        sent++;
        if (batch.length >= this.o.batchPages) {
          await this.flush(batch);
          report();
        }
      }
    }
    await this.flush(batch);
    return { sent, postponed };
  }

  /** Dirty pages per frame space (slot = pid for programs, 0 for the kernel pool). */
  private dirtyCounts(): Map<number, number> {
    const out = new Map<number, number>();
    for (const s of this.spaces()) out.set(s.slot, countDirty(s.dirtyMap()));
    return out;
  }

  /** Freeze, copy the snapshot buffer and the kernel state, resume; then send them. */
  private async finalPhase(t0: number, rounds: RoundStats[]): Promise<CheckpointResult> {
    // Every program ended while the rounds ran: a file of this VM would resume nothing.
    // (A migration of such a VM still completes: its destination simply ends too.)
    const procs = [...this.kernel.processes.values()];
    const ended = procs.length > 0 && procs.every((p) => p.status === 'exited');
    if (ended && this.o.kind === 'checkpoint') throw new VmExited();
    const tf = performance.now();
    this.frozenAt = performance.timeOrigin + tf;
    // ---- frozen: nothing below yields to the event loop ----
    if (this.o.fence) this.kernel.fence();
    const snapshot: Array<{ slot: number; page: number; data: Buffer }> = [];
    const sizes: Record<number, number> = {};
    for (const space of this.spaces()) {
      sizes[space.slot] = space.pageCount();
      for (const i of dirtyPages(space.dirtyMap(), true))
        snapshot.push({ slot: space.slot, page: i, data: Buffer.from(space.page(i)) });
    }
    const kernelState = Buffer.from(JSON.stringify(this.kernel.save()));
    const check = this.o.verifyAtFreeze ? liveDigests(this.spaces()) : null;
    this.setTracking(false);
    this.throttle?.release();
    const downtimeMs = performance.now() - tf;
    // A migrating source is fenced: what its programs do now is thrown away on
    // success, while the rest of the stream is on the downtime's critical path.
    if (this.o.fence) {
      this.kernel.scheduler.hold(true);
      this.frozenSends = true;
    } else this.kernel.scheduler.release();
    // ---- running again ----
    const batch: PageEntry[] = [];
    for (const s of snapshot) {
      const e = this.entry(s.slot, s.page, s.data);
      if (e) batch.push(e);
      if (batch.length >= this.o.batchPages) await this.flush(batch);
    }
    // A space gone by the freeze (a program that exited during the checkpoint) is not
    // in it: take back what was sent of it, or VERIFY would cover pages that SPACES
    // says do not exist (an image reader reads none of them; a stream reader keeps them).
    // (Only gone spaces: a live memory never shrinks. This runs after the freeze, so
    // it must not walk every page.)
    for (const slot of this.sent.slotIds()) {
      if (sizes[slot] !== undefined) continue;
      for (const page of this.sent.pagesOf(slot)) {
        this.sent.set(slot, page, null);
        batch.push({ slot, page, data: null });
        if (batch.length >= this.o.batchPages) await this.flush(batch);
      }
    }
    await this.flush(batch);
    if (check) compareWithLive(this.sent, check);
    // The page sum is already up to date: only the kernel state is hashed here.
    const verify =
      this.target.presenceVerify && this.o.verifyAtFreeze
        ? computeVerify(
            kernelState,
            [...this.sent.entries()].map(([slot, page]) => [slot, page, PRESENT] as const),
          )
        : computeVerify(kernelState, this.sent);
    for (const slot of this.sent.slotIds()) sizes[slot] ??= 0;
    await this.target.finish(sizes, kernelState, verify);
    this.frozenSends = false;
    this.kernel.scheduler.release();
    return {
      rounds,
      snapshotPages: snapshot.length,
      downtimeMs,
      totalMs: performance.now() - t0,
      bytes: this.target.bytesWritten,
      pagesSent: this.pagesSent,
      kernelBytes: kernelState.length,
    };
  }

  private header() {
    return {
      format: FORMAT_VERSION,
      pageSize: 4096,
      features: WASM_FEATURES,
      vmId: this.kernel.vmId,
      kind: this.o.kind,
      createdAt: new Date().toISOString(),
      kernelVersion: KERNEL_VERSION,
    };
  }
}
