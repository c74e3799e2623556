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

/** A channel to home under a job's session key (hex). */
export function sessionChannel(home: string, key: string): Promise<Channel> {
  const { host, port } = parseHostPort(home);
  const ch = connectKeyed(host, port, { psk: Buffer.from(key, 'hex'), timeoutMs: 5_000 });
  ch.catch(() => undefined); // a failure is the link's to report, when it takes the channel
  return ch;
}

/** A session opened ahead of need; `hello`: its HELLO is sent already. */
export interface EarlySession {
  ch: Promise<Channel>;
  hello: boolean;
}

/**
 * An arriving VM, before its commit: open its session with home now. When home is
 * also the migration's arbiter, say HELLO too, naming the migration: home holds it
 * until the decision and answers with it, so the clients' bytes arrive with the
 * commit instead of a round trip after the start. (Nothing else is sent before the
 * VM runs: the relay attaches only then.)
 */
export function openEarly(
  kernel: Kernel,
  migration: string | null,
  /** Connected already, while the pages arrived, to `home` under `key` (sessionChannel). */
  pre?: { home: string; key: string; ch: Promise<Channel> },
): EarlySession {
  const relay = kernel.relay!;
  const same = pre && pre.home === relay.config.home && pre.key === relay.config.key;
  if (pre && !same)
    void pre.ch.then(
      (c) => c.destroy(),
      () => undefined,
    );
  const ch = (same ? pre.ch : sessionChannel(relay.config.home, relay.config.key)).then(
    async (c) => {
      if (migration) await c.send(Home.HELLO, toJson({ ...relay.hello(kernel.vmId), migration }));
      return c;
    },
  );
  ch.catch(() => undefined); // a failure is the link's to report, when it takes the channel
  return { ch, hello: migration !== null };
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
    /** A session opened already (openEarly): the first session uses it. */
    private pre?: EarlySession,
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
        const ch = await (pre?.ch ?? sessionChannel(relay.config.home, relay.config.key));
        ch.keepalive(SESSION_KEEPALIVE_MS, SESSION_SILENT_MS);
        await this.session(ch, pre?.hello ?? false);
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

  private async session(ch: Channel, helloSent: boolean): Promise<void> {
    const relay = this.kernel.relay!;
    const link = { send: (t: number, p: Buffer) => void ch.send(t, p).catch(() => undefined) };
    // (A HELLO sent before the commit went without the early sends: the VM had not run.)
    if (!helloSent) {
      await ch.send(Home.HELLO, toJson(relay.hello(this.kernel.vmId)));
      relay.attachEarly(link);
    }
    const first = await ch.next(5_000);
    if (!first) throw new Error('home closed the session before WELCOME');
    if (first.type === Home.REFUSED) {
      const { reason } = parseHomeJson<{ reason: string }>(first.payload, 'REFUSED', () => true);
      // This copy runs (it was committed): what home judges is its plain HELLO, by its token.
      if (helloSent) throw new Error(`home refused the HELLO sent before the commit (${reason})`);
      this.refused = reason;
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
