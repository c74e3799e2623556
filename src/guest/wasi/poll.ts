// poll_oneoff and sched_yield (the program waits or gives way), and roam's own
// safepoint poll: the instrumented program calls it when its fuel runs out, and
// it unwinds the program when its time slice is over.
import { Errno } from '../errno.js';
import { readable } from './io.js';
import { BLOCK, type Sys } from './syscall.js';

const EVENTTYPE_CLOCK = 0;
const EVENTTYPE_FD_WRITE = 2;
const SUBCLOCKFLAGS_ABSTIME = 1;
const SUBSCRIPTION_SIZE = 48;
const EVENT_SIZE = 32;

interface PollEvent {
  userdata: bigint;
  error: number;
  type: number;
  nbytes: bigint;
}

function pollOneoff(s: Sys, inPtr: number, outPtr: number, nsubs: number, nevents: number) {
  const { k, p, mem: m } = s;
  const events: PollEvent[] = [];
  let deadline: bigint | undefined;
  let onlyClocks = true;
  for (let i = 0; i < nsubs; i++) {
    const sub = inPtr + i * SUBSCRIPTION_SIZE;
    const userdata = m.u64(sub);
    const tag = m.u8(sub + 8);
    if (tag === EVENTTYPE_CLOCK) {
      const timeout = m.u64(sub + 24);
      const abs = (m.u16(sub + 40) & SUBCLOCKFLAGS_ABSTIME) !== 0;
      const clockId = m.u32(sub + 16);
      // Keep the deadline of the first entry into this syscall: a wake-up or a
      // restore must not restart the sleep.
      let until = p.wait?.until;
      if (until === undefined) {
        const now = clockId === 0 ? k.clock.realtime() : k.clock.monotonic();
        until = k.clock.monotonic() + (abs ? timeout - now : timeout);
      }
      deadline = deadline === undefined || until < deadline ? until : deadline;
      if (k.clock.monotonic() >= until) events.push({ userdata, error: 0, type: 0, nbytes: 0n });
    } else {
      onlyClocks = false;
      const e = s.table().get(m.u32(sub + 16));
      if (!e) events.push({ userdata, error: Errno.BADF, type: tag, nbytes: 0n });
      else if (tag === EVENTTYPE_FD_WRITE || readable(s, e))
        events.push({ userdata, error: 0, type: tag, nbytes: 1n });
    }
  }
  if (events.length === 0) {
    p.wait = { reason: onlyClocks ? 'sleep' : 'poll', until: deadline };
    if (deadline !== undefined) k.timer(p, deadline);
    return BLOCK;
  }
  events.forEach((ev, i) => {
    const o = outPtr + i * EVENT_SIZE;
    m.setU64(o, ev.userdata);
    m.setU16(o + 8, ev.error);
    m.setU8(o + 10, ev.type);
    m.setU64(o + 16, ev.nbytes);
    m.setU16(o + 24, 0);
  });
  m.dirty(outPtr, events.length * EVENT_SIZE);
  m.setU32(nevents, events.length);
  return 0;
}

export function pollImports(s: Sys): WebAssembly.ModuleImports {
  const p = s.p;
  return {
    poll_oneoff: s.blocking('poll', (inPtr: number, outPtr: number, n: number, nev: number) =>
      pollOneoff(s, inPtr, outPtr, n, nev),
    ),
    sched_yield: s.blocking('yield', () => {
      // First entry: give up the slice. Re-entry after the rewind: done.
      if (p.pending === 'yield') {
        p.pending = null;
        return 0;
      }
      p.pending = 'yield';
      return BLOCK;
    }),
  };
}

/** The safepoint poll (import roam.poll): `kind` 0 = loop polls, 1 = function-entry polls. */
export function safepoint(s: Sys): (kind: number) => void {
  const { k, p } = s;
  return (kind: number) => {
    p.enterSyscall();
    const now = performance.now();
    if (now >= k.scheduler.sliceEnd) {
      p.unwind(null);
      return;
    }
    // Aim for a trip into the kernel about every half millisecond, per poll class.
    const c = kind === 0 ? 0 : 1;
    const since = now - p.lastPoll[c];
    if (since < 0.25 && p.fuelPerPoll[c] < 1 << 24) p.fuelPerPoll[c] *= 2;
    // Too slow: scale down to the pace just seen at once (halving could take many late trips).
    else if (since > 1)
      p.fuelPerPoll[c] = Math.max(c === 0 ? 64 : 1, Math.floor((p.fuelPerPoll[c] * 0.5) / since));
    p.lastPoll[c] = now;
    p.setFuel(c, p.fuelPerPoll[c]);
  };
}
