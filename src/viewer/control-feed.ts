// A feed from a VM on this host, through its control socket: a long poll of its
// /dev/blink state (what changed since the last answer, or the whole state when
// the VM is new to us). When the VM checkpoints, migrates or is restored, the
// poll fails or the VM answers from a new epoch with its whole state, and every
// viewer rebuilds the display from it. It finds the VM again by id each time, so
// a VM that moved to another process on this host is followed there.
import type { InputEvent } from '../blink/display.js';
import type { ViewerMessage } from '../blink/messages.js';
import { emptyState, objFromWire, type BlinkRecord } from '../blink/wire.js';
import { controlRequest, findVm, type BlinkEvent } from '../vm/control.js';
import { FeedHub, type BlinkFeed } from './feed.js';

const POLL_MS = 1000;
/** A poll that has not answered by then is given up (the VM froze or went). */
const POLL_TIMEOUT_MS = POLL_MS + 2000;
const RETRY_MS = 30;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function toRecord(m: ViewerMessage): BlinkRecord | null {
  if (m.t === 'object') return { kind: 'object', obj: objFromWire(m.obj) };
  if (m.t === 'regs') return { kind: 'regs', first: m.first, values: m.values };
  if (m.t === 'delete') return { kind: 'delete', id: m.id };
  if (m.t === 'update') return { kind: 'update' };
  return null;
}

export class ControlFeed implements BlinkFeed {
  private readonly hub = new FeedHub(emptyState());
  private closed = false;
  private epoch: string | undefined;
  private since: number | undefined;
  /** Polls answered, and the times (ms) the VM could not be reached, for `roam view --json`. */
  polls = 0;
  lastError = '';

  constructor(private readonly vmId: string) {
    void this.run();
  }

  private async poll(): Promise<void> {
    const vm = findVm(this.vmId);
    let timer: NodeJS.Timeout | undefined;
    const e = await Promise.race([
      controlRequest<BlinkEvent>(vm, {
        op: 'blink',
        epoch: this.epoch,
        since: this.since,
        waitMs: POLL_MS,
      }),
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error('the VM did not answer the poll')), POLL_TIMEOUT_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    for (const m of e.messages) {
      if (m.t === 'state') {
        this.hub.name = e.epoch;
        this.hub.reset({
          objects: m.objects.map(objFromWire),
          regs: m.regs,
          updates: m.updates,
        });
      } else {
        const r = toRecord(m);
        if (r) this.hub.apply(r);
      }
    }
    this.epoch = e.epoch;
    this.since = e.seq;
    this.polls++;
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      try {
        await this.poll();
      } catch (err) {
        this.lastError = err instanceof Error ? err.message : String(err);
        await sleep(RETRY_MS);
      }
    }
  }

  subscribe(send: (m: ViewerMessage) => void): () => void {
    return this.hub.subscribe(send);
  }

  input(e: InputEvent): void {
    try {
      const vm = findVm(this.vmId);
      void controlRequest(vm, { op: 'blink-input', input: e }).catch(() => {});
    } catch {
      // The VM is between processes: this event is lost, as a key pressed on a frozen display.
    }
  }

  close(): void {
    this.closed = true;
  }
}
