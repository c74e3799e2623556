// Where a viewer's display state comes from. A feed holds one VM's display state
// (its procedures, objects and registers) and tells each subscriber the whole of
// it first, then each change; after a reconnect (the VM checkpointed, moved or
// was restored) it starts again with the whole state, under a new epoch. The
// viewer server serves any feed; home can plug in one that reaches the VM through
// its session.
import type { InputEvent } from '../blink/display.js';
import type { ViewerMessage } from '../blink/viewer-page.js';
import { applyRecord, objToWire, type BlinkRecord, type BlinkState } from '../blink/wire.js';

export interface BlinkFeed {
  /** Calls `send` with the whole state now and with every change after; returns unsubscribe. */
  subscribe(send: (m: ViewerMessage) => void): () => void;
  /** A user's input, for the VM to read from /dev/blink. */
  input(e: InputEvent): void;
  close(): void;
}

export const stateMessage = (s: BlinkState, epoch: number): ViewerMessage => ({
  t: 'state',
  objects: s.objects.map(objToWire),
  regs: s.regs,
  updates: s.updates,
  epoch,
});

/** A record as the change message it makes (after it has been applied to `s`). */
export function recordMessage(s: BlinkState, r: BlinkRecord): ViewerMessage {
  switch (r.kind) {
    case 'object':
      return { t: 'object', obj: objToWire(r.obj) };
    case 'regs':
      return { t: 'regs', first: r.first, values: r.values };
    case 'delete':
      return { t: 'delete', id: r.id };
    default:
      return { t: 'update', count: s.updates };
  }
}

/** Subscribers and the current state, for feeds to build on. */
export class FeedHub {
  private readonly subs = new Set<(m: ViewerMessage) => void>();
  epoch = 0;
  constructor(public state: BlinkState) {}
  subscribe(send: (m: ViewerMessage) => void): () => void {
    this.subs.add(send);
    send(stateMessage(this.state, this.epoch));
    return () => this.subs.delete(send);
  }
  /** A whole new state (a reconnect): every subscriber rebuilds from it. */
  reset(s: BlinkState): void {
    this.state = s;
    this.epoch++;
    this.broadcast(stateMessage(s, this.epoch));
  }
  apply(r: BlinkRecord): void {
    if (applyRecord(this.state, r)) this.broadcast(recordMessage(this.state, r));
  }
  broadcast(m: ViewerMessage): void {
    for (const s of this.subs) s(m);
  }
}
