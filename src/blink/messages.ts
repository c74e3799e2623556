// What a viewer is sent, one JSON message at a time: a VM's whole display state
// (after which the viewer rebuilds everything, 9.1.8), or one change.
import { objToWire, type BlinkRecord, type BlinkState, type WireObject } from './wire.js';

export type ViewerMessage =
  | { t: 'state'; objects: WireObject[]; regs: number[]; updates: number; epoch: string }
  | { t: 'object'; obj: WireObject }
  | { t: 'regs'; first: number; values: number[] }
  | { t: 'delete'; id: number }
  | { t: 'update'; count: number }
  | { t: 'gone'; reason: string };

export const stateMessage = (s: BlinkState, epoch: string): ViewerMessage => ({
  t: 'state',
  objects: s.objects.map(objToWire),
  regs: s.regs,
  updates: s.updates,
  epoch,
});

/** A record as the change message it makes, `updates` being the count after it. */
export function recordMessage(r: BlinkRecord, updates: number): ViewerMessage {
  switch (r.kind) {
    case 'object':
      return { t: 'object', obj: objToWire(r.obj) };
    case 'regs':
      return { t: 'regs', first: r.first, values: r.values };
    case 'delete':
      return { t: 'delete', id: r.id };
    default:
      return { t: 'update', count: updates };
  }
}
