// The VM's one outbound session to its home (thesis 8.2, "calling home"). The VM
// opens it, so a VM behind NAT is reachable; it is authenticated by the job's
// session key both ways; and it resumes after a break or a migration: HELLO
// carries the continuation token home gave last and where each relayed stream
// got to, WELCOME a fresh token and where home got to (src/guest/relay.ts).
// Over it home relays client connections and sends commands (migrate, fork,
// stop); the VM asks home for top-ups and, when its node drains, for a new node.
import type { Channel } from '../migrate/channel.js';
import { connectKeyed } from '../migrate/keyed.js';
import type { Kernel } from '../guest/kernel.js';
import type { MigrateOptions, MigrateResult } from '../migrate/source.js';
import {
  checks,
  decodeRelay,
  Home,
  SESSION_KEEPALIVE_MS,
  SESSION_SILENT_MS,
  parseHomeJson,
  toJson,
  type Answer,
  type Ask,
  type Command,
  type Open,
  type Result,
  type Welcome,
} from '../guest/home-wire.js';
import { parseHostPort } from '../util/address.js';

const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2_000;

export type CommandHandler = (c: Command) => Promise<Record<string, unknown>>;

/** Open the channel to the VM's home ahead of need (an arriving VM, before its commit). */
export function preconnect(kernel: Kernel): Promise<Channel> {
  const { home, key } = kernel.relay!.config;
  const { host, port } = parseHostPort(home);
  const p = connectKeyed(host, port, { psk: Buffer.from(key, 'hex'), timeoutMs: 5_000 });
  p.catch(() => undefined); // a failure is the link's to report, when it takes the channel
  return p;
}

export class HomeLink {
  private ch: Channel | null = null;
  private closed = false;
  private retryMs = RETRY_MIN_MS;
  private nextAsk = 1;
  private readonly asks = new Map<number, (a: Answer) => void>();
  /** Told by home that this copy is not the VM's current one: it stops calling. */
  refused: string | null = null;

  constructor(
    private readonly kernel: Kernel,
    private readonly onCommand: CommandHandler,
    private readonly log: (m: string) => void,
    /** A channel opened already (preconnect): the first session uses it. */
    private pre?: Promise<Channel>,
  ) {}

  get connected(): boolean {
    return this.ch !== null;
  }

  start(): void {
    void this.loop();
  }

  /** This copy has handed the VM on: no more sessions (the open one carries the last result). */
  retire(): void {
    this.closed = true;
  }

  close(): void {
    this.closed = true;
    this.kernel.relay?.detach();
    this.ch?.destroy();
  }

  /** Ask home (a top-up, or where to go); null when home does not answer in `timeoutMs`. */
  ask(op: Ask['op'], reason: string, seconds: number, timeoutMs: number): Promise<Answer | null> {
    const id = this.nextAsk++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.asks.delete(id);
        resolve(null);
      }, timeoutMs);
      this.asks.set(id, (a) => {
        clearTimeout(timer);
        resolve(a);
      });
      const send = () => this.ch?.send(Home.ASK, toJson({ id, op, reason, seconds } satisfies Ask));
      if (this.ch) void send()?.catch(() => undefined);
      else {
        // Not connected yet: ask as soon as the session is up (within the timeout).
        const poll = setInterval(() => {
          if (!this.asks.has(id)) return clearInterval(poll);
          if (this.ch) {
            clearInterval(poll);
            void send()?.catch(() => undefined);
          }
        }, 50);
      }
    });
  }

  private async loop(): Promise<void> {
    const relay = this.kernel.relay!;
    const { host, port } = parseHostPort(relay.config.home);
    while (!this.closed && !this.refused) {
      // A fenced VM says nothing (a migration's last phase): whatever it would
      // resume may belong to its destination by now.
      if (this.kernel.fenced) {
        await sleep(20);
        continue;
      }
      try {
        const pre = this.pre;
        this.pre = undefined;
        const ch = await (pre ??
          connectKeyed(host, port, {
            psk: Buffer.from(relay.config.key, 'hex'),
            timeoutMs: 5_000,
          }));
        ch.keepalive(SESSION_KEEPALIVE_MS, SESSION_SILENT_MS);
        await this.session(ch);
      } catch (err) {
        if (!this.closed) this.log(`home ${relay.config.home}: ${(err as Error).message}`);
      }
      relay.detach();
      this.ch = null;
      if (this.closed || this.refused) break;
      await sleep(this.retryMs);
      this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
    }
  }

  private async session(ch: Channel): Promise<void> {
    const relay = this.kernel.relay!;
    await ch.send(Home.HELLO, toJson(relay.hello(this.kernel.vmId)));
    const link = { send: (t: number, p: Buffer) => void ch.send(t, p).catch(() => undefined) };
    relay.attachEarly(link);
    const first = await ch.next(5_000);
    if (!first) throw new Error('home closed the session before WELCOME');
    if (first.type === Home.REFUSED) {
      this.refused = parseHomeJson<{ reason: string }>(first.payload, 'REFUSED', () => true).reason;
      this.log(`home refused this VM's session: ${this.refused}`);
      ch.destroy();
      return;
    }
    if (first.type !== Home.WELCOME) throw new Error(`home answered HELLO with type ${first.type}`);
    const w = parseHomeJson<Welcome>(first.payload, 'WELCOME', checks.welcome);
    this.ch = ch;
    this.retryMs = RETRY_MIN_MS;
    relay.attach(link, w);
    for (;;) {
      const m = await ch.next();
      if (!m) throw new Error('home closed the session');
      this.onMessage(ch, m.type, m.payload);
    }
  }

  private onMessage(ch: Channel, type: number, payload: Buffer): void {
    const relay = this.kernel.relay!;
    switch (type) {
      case Home.OPEN:
        return relay.onOpen(parseHomeJson<Open>(payload, 'OPEN', checks.open));
      case Home.DATA:
      case Home.ACK:
      case Home.FIN:
      case Home.RST:
        return relay.onFrame(type, decodeRelay(payload));
      case Home.ANSWER: {
        const a = parseHomeJson<Answer>(payload, 'ANSWER', checks.answer);
        return this.asks.get(a.id)?.(a);
      }
      case Home.CMD: {
        const c = parseHomeJson<Command>(payload, 'CMD', checks.command);
        void this.onCommand(c)
          .then(
            (result) => ({ id: c.id, ok: true, result }),
            (err: Error) => ({ id: c.id, ok: false, error: err.message }),
          )
          .then((r: Result) => ch.send(Home.RESULT, toJson(r)).catch(() => undefined));
        return;
      }
      default:
        throw new Error(`home sent message type ${type}`);
    }
  }
}

/**
 * Leave for a node home names, within the grace. An aborted try (the working set
 * did not fit the downtime budget) is tried again with a larger budget: when the
 * VM must go, a longer freeze beats a suspension.
 */
export async function moveAway(
  link: HomeLink,
  migrate: (o: Omit<MigrateOptions, 'psk'> & { psk?: Buffer }) => Promise<MigrateResult>,
  log: (m: string) => void,
  reason: string,
  seconds: number,
): Promise<boolean> {
  const until = performance.now() + seconds * 1000;
  for (let attempt = 0; attempt < 3; attempt++) {
    const left = until - performance.now();
    if (left < 1_000) break;
    const a = await link.ask('destination', reason, seconds, Math.max(1_000, left / 2));
    if (!a?.ok || !a.to || !a.key) {
      log(`home gave no destination (${a?.error ?? 'no answer'})`);
      return false;
    }
    try {
      const res = await migrate({
        kind: 'migration',
        to: a.to,
        psk: Buffer.from(a.key, 'hex'),
        home: a.arbiter,
        maxDowntimeMs: attempt === 0 ? undefined : 100 * attempt,
      });
      log(`moved to ${res.to} before the node went`);
      return true;
    } catch (err) {
      log(`moving away failed (${(err as Error).message})`);
    }
  }
  return false;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
