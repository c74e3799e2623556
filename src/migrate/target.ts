// The page cleaner's target for a live migration: the checkpoint stream, in
// chunks, over the encrypted channel; paced to --max-bandwidth, measuring the link
// as it goes, and switching LZ4 page compression on when the link is slow enough
// for compression to shorten the migration.
import {
  compressionGain,
  streamTarget,
  type CheckpointTarget,
  type PageEntry,
} from '../format/index.js';
import type { Channel } from './channel.js';
import { Msg } from './protocol.js';
import { Pacer, RateMeter } from './rate.js';

/** Decide about compression after this much has gone out (the socket buffers fill first). */
const DECIDE_AFTER = 8 << 20;

export interface ChannelTarget extends CheckpointTarget {
  readonly meter: RateMeter;
  /** The destination answered a SYNC. */
  synced(): void;
  /** Whether pages are being LZ4-compressed. */
  readonly compressing: boolean;
}

export function channelTarget(
  channel: Channel,
  opts: { maxBandwidth?: number; compress?: 'auto' | 'always' | 'never' } = {},
): ChannelTarget {
  const pacer = opts.maxBandwidth ? new Pacer(opts.maxBandwidth) : null;
  const meter = new RateMeter();
  const mode = opts.compress ?? 'auto';
  const base = streamTarget(
    async (chunk) => {
      if (pacer) await pacer.take(chunk.length + 21);
      const t = performance.now();
      await channel.send(Msg.STREAM, chunk);
      meter.add(chunk.length, performance.now() - t);
    },
    // The channel authenticates every byte (no stream digest) and encrypts a chunk
    // into a buffer of its own as it is sent, so the chunk's buffer takes the next one.
    { what: 'migration', transport: true, reuse: true },
  );
  const w = base.writer;
  w.compress = mode === 'always';
  let decided = mode !== 'auto';
  let aborted: Error | undefined;
  const waiting: Array<{ ok: () => void; fail: (e: Error) => void }> = [];
  const live = (): void => {
    if (aborted) throw new Error(`migration aborted: ${aborted.message}`, { cause: aborted });
  };
  const decide = (batch: PageEntry[]): void => {
    const rate = meter.rate;
    if (decided || w.bytesWritten < DECIDE_AFTER || rate === null) return;
    decided = true;
    const sample = batch
      .filter((e) => e.data)
      .slice(0, 64)
      .map((e) => e.data!);
    if (sample.length === 0) return;
    const g = compressionGain(sample);
    const rawUs = (4096 / rate) * 1e6;
    w.compress = g.ratio * rawUs + g.compressUsPerPage < rawUs;
  };
  return {
    meter,
    presenceVerify: base.presenceVerify,
    get compressing() {
      return w.compress;
    },
    begin: (header, modules) => base.begin(header, modules),
    async pages(batch) {
      if (!aborted) decide(batch);
      await base.pages(batch);
    },
    finish: (spaces, kernel, verify) => base.finish(spaces, kernel, verify),
    async abort(reason) {
      aborted = reason;
      await base.abort(reason);
      for (const x of waiting.splice(0)) x.fail(reason);
    },
    async sizes(spaces) {
      live();
      await w.spaces(spaces);
    },
    async drain() {
      live();
      const done = new Promise<void>((ok, fail) => waiting.push({ ok, fail }));
      // Both at once: if the send fails, `done` (rejected later, when the channel
      // fails) still has a handler; awaited one after the other it had none and
      // crashed the source VM.
      await Promise.all([channel.send(Msg.SYNC), done]);
    },
    synced() {
      waiting.shift()?.ok();
    },
    get bytesWritten() {
      return base.bytesWritten;
    },
  };
}
