// Where a viewer's display state comes from. A feed holds one VM's display state
// (its procedures, objects and registers) and tells each subscriber the whole of
// it first, then each change; after a reconnect (the VM checkpointed, moved or
// was restored) it starts again with the whole state, under a new epoch. The
// viewer server serves any feed; home can plug in one that reaches the VM through
// its session.
import type { InputEvent } from '../blink/display.js';
import { recordMessage, stateMessage, type ViewerMessage } from '../blink/messages.js';
import { applyRecord, type BlinkRecord, type BlinkState } from '../blink/wire.js';

export interface BlinkFeed {
  /** Calls `send` with the whole state now and with every change after; returns unsubscribe. */
  subscribe(send: (m: ViewerMessage) => void): () => void;
  /** A user's input, for the VM to read from /dev/blink. */
  input(e: InputEvent): void;
  close(): void;
}

/** Subscribers and the current state, for feeds to build on. */
export class FeedHub {
  private readonly subs = new Set<(m: ViewerMessage) => void>();
  epoch = 0;
  private ready = false;
  /** Prefix of the epochs this hub hands out (a feed's own, or the VM's). */
  name = 'log';
  constructor(public state: BlinkState) {}
  subscribe(send: (m: ViewerMessage) => void): () => void {
    this.subs.add(send);
    // Nothing until there is a whole state: a viewer keeps its last picture meanwhile.
    if (this.ready) send(stateMessage(this.state, `${this.name}-${this.epoch}`));
    return () => this.subs.delete(send);
  }
  /** A whole new state (a reconnect): every subscriber rebuilds from it. */
  reset(s: BlinkState): void {
    this.ready = true;
    this.state = s;
    this.epoch++;
    this.broadcast(stateMessage(s, `${this.name}-${this.epoch}`));
  }
  apply(r: BlinkRecord): void {
    if (applyRecord(this.state, r)) this.broadcast(recordMessage(r, this.state.updates));
  }
  broadcast(m: ViewerMessage): void {
    for (const s of this.subs) s(m);
  }
}
