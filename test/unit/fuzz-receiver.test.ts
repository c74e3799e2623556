// Issue 13: the cstrap parses bytes from whoever connects. Two fuzzes of its
// decoders on their own:
// - the receiver (src/migrate/receiver.ts) fed message sequences: random ones, and a
//   real VM's migration (LOADER, ARBITER, the checkpoint stream of a prepared program)
//   with messages mutated, dropped, repeated, reordered or inserted, and the stream
//   re-chunked. The channel is a test double (it hands the receiver messages as the
//   real one would after authentication: the uploader holds the key, so signed is
//   not trusted). Each run must end in a built VM or a RoamError, never another
//   exception, a crash or a hang, with memory bounded.
// - the channel's frame decoder (src/migrate/channel.ts) over real loopback TCP: a
//   real client's bytes mutated in flight, and random bytes. The server either gets
//   exactly the messages sent, or refuses with a ChannelError.
// ROAM_RECEIVER_FUZZ_COUNT (default 1,000) and ROAM_FRAME_FUZZ_COUNT (default 200).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { example, HOME } from '../helpers.js';

process.env.ROAM_HOME = HOME;
const { prepare } = await import('../../src/wasm/prepare.js');
const { Kernel } = await import('../../src/guest/kernel.js');
const { PageCleaner } = await import('../../src/checkpoint/cleaner.js');
const { streamTarget } = await import('../../src/format/index.js');
const { receiveVm } = await import('../../src/migrate/receiver.js');
const { loaderManifest } = await import('../../src/migrate/loader.js');
const { Msg } = await import('../../src/migrate/protocol.js');
const { acceptChannel, connectChannel } = await import('../../src/migrate/channel.js');
const { RoamError } = await import('../../src/util/errors.js');
type Channel = import('../../src/migrate/channel.js').Channel;
type Message = { type: number; payload: Buffer };

const COUNT = Number(process.env.ROAM_RECEIVER_FUZZ_COUNT ?? 1000);
const FRAMES = Number(process.env.ROAM_FRAME_FUZZ_COUNT ?? 200);
const quiet = () => {};
const QUIET = { log: quiet, stdout: quiet, stderr: quiet };

/** A real migration's messages: a prepared counter program, checkpointed as a source does. */
async function validMigration(): Promise<Message[]> {
  const mod = await prepare(fs.readFileSync(example('counter')));
  const k = new Kernel({ vmId: 'fuzzed', ...QUIET });
  const chunks: Buffer[] = [];
  try {
    k.scheduler.paused.add(k.spawn(mod, ['counter', '10', '1'], []).pid);
    const target = streamTarget((c) => void chunks.push(Buffer.from(c)), { transport: true });
    await new PageCleaner(k, target, { kind: 'migration', fence: true, strict: true }).run();
  } finally {
    k.close();
  }
  const arbiter = { migration: randomBytes(16).toString('hex'), home: null };
  return [
    { type: Msg.LOADER, payload: loaderManifest() },
    { type: Msg.ARBITER, payload: Buffer.from(JSON.stringify(arbiter)) },
    ...chunks.map((payload) => ({ type: Msg.STREAM, payload })),
  ];
}

/** The channel as the receiver sees it after the handshake (next, send, destroy). */
function channelOf(msgs: Message[]): Channel {
  let i = 0;
  return {
    next: () => Promise.resolve(msgs[i++] ?? null),
    send: () => Promise.resolve(),
    destroy: () => undefined,
  } as unknown as Channel;
}

function mutateBytes(b: Buffer): Buffer {
  const out = Buffer.from(b);
  switch (randomInt(5)) {
    case 0:
      for (let n = randomInt(1, 5); n > 0 && out.length; n--)
        out[randomInt(out.length)] ^= 1 << randomInt(8);
      return out;
    case 1:
      return out.subarray(0, randomInt(out.length + 1));
    case 2: // a length, count or offset field set to an extreme
      if (out.length >= 4)
        out.writeUInt32LE(
          [0, 1, 0xffffffff, 0x7fffffff, 1 << 20][randomInt(5)],
          randomInt(out.length - 3),
        );
      return out;
    case 3:
      return Buffer.concat([out, randomBytes(randomInt(1, 100))]);
    default:
      return randomBytes(randomInt(0, 200));
  }
}

/** The stream's bytes cut at other places (a valid migration still). */
function rechunk(msgs: Message[]): Message[] {
  const bytes = Buffer.concat(msgs.filter((m) => m.type === Msg.STREAM).map((m) => m.payload));
  const out = msgs.filter((m) => m.type !== Msg.STREAM);
  for (let at = 0; at < bytes.length;) {
    const n = randomInt(1, 50_000);
    out.push({ type: Msg.STREAM, payload: bytes.subarray(at, at + n) });
    if (randomInt(8) === 0) out.push({ type: Msg.SYNC, payload: Buffer.alloc(0) });
    at += n;
  }
  return out;
}

function hostile(valid: Message[]): Message[] {
  const m = valid.map((x) => ({ ...x }));
  const at = randomInt(m.length);
  switch (randomInt(8)) {
    case 0: // random messages only
      return Array.from({ length: randomInt(1, 20) }, () => ({
        type: randomInt(256),
        payload: randomBytes(randomInt(0, 300)),
      }));
    case 1:
      m[at].payload = mutateBytes(m[at].payload);
      return m;
    case 2:
      m.splice(at, 1);
      return m;
    case 3:
      m.splice(at, 0, { ...m[at] });
      return m;
    case 4:
      m.splice(at, 0, { type: randomInt(256), payload: randomBytes(randomInt(0, 64)) });
      return m;
    case 5: {
      const b = randomInt(m.length);
      [m[at], m[b]] = [m[b], m[at]];
      return m;
    }
    case 6:
      return m.slice(0, at);
    default:
      return rechunk(m);
  }
}

test(
  `fuzz: ${COUNT} hostile migrations into the receiver end in a VM or a RoamError`,
  { timeout: 900_000 },
  async () => {
    const valid = await validMigration();
    const built = await receiveVm(channelOf(valid), { kernel: QUIET });
    built.kernel.close(); // the unmutated migration builds: the fuzz starts from a real one
    const rss0 = process.memoryUsage().rss;
    let peak = rss0,
      accepted = 0;
    const codes = new Map<string, number>();
    for (let i = 0; i < COUNT; i++) {
      const msgs = hostile(valid);
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`run ${i} hung`)), 20_000);
      });
      try {
        const r = await Promise.race([
          receiveVm(channelOf(msgs), { kernel: QUIET, idleTimeoutMs: 1000 }),
          hang,
        ]);
        r.kernel.close();
        accepted++;
      } catch (err) {
        assert.ok(err instanceof RoamError, `run ${i}: not a RoamError: ${(err as Error).stack}`);
        codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
      } finally {
        clearTimeout(timer);
      }
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    console.log(
      `receiver fuzz: ${COUNT} runs, ${accepted} built, refused by code:`,
      Object.fromEntries(codes),
    );
    console.log(
      `resident: ${Math.round(rss0 / 1048576)} MiB before, peak ${Math.round(peak / 1048576)} MiB`,
    );
    assert.ok(peak - rss0 < 512 * 1048576, 'memory stayed bounded');
    assert.ok(codes.size > 1 && accepted < COUNT, 'the mutations were refused for several reasons');
  },
);

/** One connection through a proxy that mutates the client's bytes; what the server got. */
async function session(mutate: (b: Buffer) => Buffer, raw?: Buffer) {
  const psk = Buffer.alloc(32, 7);
  const sent = Array.from({ length: randomInt(1, 6) }, () => randomBytes(randomInt(0, 5000)));
  const got: Buffer[] = [];
  let refusal: unknown = null;
  const socks: net.Socket[] = []; // all destroyed at the end, so that nothing keeps the test alive
  const server = net.createServer((sock) => {
    socks.push(sock);
    void (async () => {
      const ch = await acceptChannel(sock, { psk, timeoutMs: 2000 });
      for (let m = await ch.next(2000); m; m = await ch.next(2000))
        got.push(Buffer.from(m.payload));
    })().catch((e: unknown) => (refusal = e));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const proxy = net.createServer((down) => {
    const up = net.connect(port, '127.0.0.1');
    socks.push(up, down);
    down.on('data', (d: Buffer) => up.write(mutate(d)));
    up.on('data', (d: Buffer) => down.write(d));
    down.on('end', () => up.end());
    for (const s of [up, down]) s.on('error', () => (up.destroy(), down.destroy()));
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const pport = (proxy.address() as net.AddressInfo).port;
  try {
    if (raw) {
      const s = net.connect(pport, '127.0.0.1', () => s.end(raw));
      socks.push(s);
      s.on('error', () => undefined);
    } else {
      const ch = await connectChannel('127.0.0.1', pport, { psk, timeoutMs: 2000 });
      for (const b of sent) await ch.send(Msg.STREAM, b);
      await ch.end();
    }
  } catch {
    /* the client sees the refusal too */
  }
  const t0 = Date.now();
  while (refusal === null && got.length < sent.length && Date.now() - t0 < 6000)
    await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 20));
  for (const s of socks) s.destroy();
  proxy.close();
  server.close();
  return { sent, got, refusal };
}

test(
  `fuzz: ${FRAMES} mutated or random channel streams deliver the sent messages or a ChannelError`,
  { timeout: 600_000 },
  async () => {
    let intact = 0,
      refused = 0;
    for (let i = 0; i < FRAMES; i++) {
      let seen = 0;
      const flipAt = randomInt(1, 12_000);
      const mutate = (d: Buffer) => {
        const out = Buffer.from(d);
        if (seen <= flipAt && flipAt < seen + d.length && i % 4 !== 3)
          out[flipAt - seen] ^= 1 << randomInt(8);
        seen += d.length;
        return i % 4 === 3 && randomInt(2)
          ? Buffer.concat([out, randomBytes(randomInt(1, 40))])
          : out;
      };
      const r = await session(mutate, i % 5 === 4 ? randomBytes(randomInt(0, 3000)) : undefined);
      for (const [j, b] of r.got.entries())
        assert.ok(b.equals(r.sent[j]), `run ${i}: message ${j} was altered`);
      if (r.refusal) {
        assert.ok(r.refusal instanceof RoamError, `run ${i}: ${(r.refusal as Error).message}`);
        refused++;
      } else if (r.got.length === r.sent.length) intact++;
    }
    console.log(`frame fuzz: ${FRAMES} sessions, ${refused} refused, ${intact} delivered whole`);
    assert.ok(refused > FRAMES / 2);
  },
);
