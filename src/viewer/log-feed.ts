// A feed that follows a record log: a file a guest writes BlinkGL records into
// (examples/blink.h with BLINK_DEV=/out/blink.rec and --dir HOST::/out), the same
// bytes it would write to /dev/blink. It is read as it grows; a file that shrinks
// was started again and is read anew under a new epoch. Its bytes are the
// guest's, so a bad record stops the feed (it cannot resynchronise) and says why.
import fs from 'node:fs';
import type { InputEvent } from '../blink/display.js';
import { BlinkRefusal } from '../blink/ops.js';
import { emptyState, parseRecords, wholeRecords } from '../blink/wire.js';
import type { BlinkFeed } from './feed.js';
import { FeedHub } from './feed.js';

export class RecordLogFeed implements BlinkFeed {
  private readonly hub = new FeedHub(emptyState());
  private offset = 0;
  private timer: NodeJS.Timeout;
  error: string | null = null;

  constructor(
    private readonly file: string,
    pollMs = 20,
  ) {
    this.poll(true);
    this.timer = setInterval(() => this.poll(false), pollMs);
  }

  private poll(first: boolean): void {
    if (this.error) return;
    let size: number;
    try {
      size = fs.statSync(this.file).size;
    } catch {
      return; // not written yet
    }
    if (size < this.offset) {
      this.offset = 0;
      first = true;
    }
    if (size === this.offset && !first) return;
    const buf = Buffer.alloc(size - this.offset);
    const fd = fs.openSync(this.file, 'r');
    try {
      fs.readSync(fd, buf, 0, buf.length, this.offset);
    } finally {
      fs.closeSync(fd);
    }
    const n = wholeRecords(buf);
    try {
      const records = parseRecords(buf.subarray(0, n));
      this.offset += n;
      if (first) {
        const s = emptyState();
        const hub = new FeedHub(s);
        for (const r of records) hub.apply(r);
        this.hub.reset(hub.state);
      } else for (const r of records) this.hub.apply(r);
    } catch (e) {
      if (!(e instanceof BlinkRefusal)) throw e;
      this.error = `${this.file}: ${e.message}`;
    }
  }

  subscribe(send: Parameters<BlinkFeed['subscribe']>[0]): () => void {
    return this.hub.subscribe(send);
  }
  input(_e: InputEvent): void {
    // A log has no way back into the guest.
  }
  close(): void {
    clearInterval(this.timer);
  }
}
