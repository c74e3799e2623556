// The relay's exactly-once rule, one module pair in one process: home's end
// (src/home/relay.ts, with real loopback client sockets) and the VM's
// (src/guest/relay.ts), joined by an in-memory session that is cut at random
// and resumed by HELLO/WELCOME, and by "migrations": the VM's relay is fenced,
// its state saved and restored into a new relay that takes over (the old one
// stays around, fenced, as a source does until it exits). A program echoes
// every byte back reversed in case. Afterwards each client got exactly the
// transform of what it sent: nothing lost, repeated or reordered.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { decodeRelay, Home, type Open } from '../../src/guest/home-wire.js';
import { Relay, type RelayStream } from '../../src/guest/relay.js';
import { JobRelay, type SessionLink } from '../../src/home/relay.js';
import { rng } from '../helpers.js';

const swap = (b: Buffer): Buffer =>
  Buffer.from(b.map((c) => (c >= 97 && c <= 122 ? c - 32 : c >= 65 && c <= 90 ? c + 32 : c)));

class World {
  home = new JobRelay('j0', () => {});
  vm: Relay;
  private links: Array<{ up: boolean }> = [];
  token = 't0';

  constructor() {
    this.vm = this.newVm();
  }

  private newVm(state?: ReturnType<Relay['save']>): Relay {
    const accept = (_port: number, _s: RelayStream) => true;
    const cfg = { home: 'x:1', job: 'j0', key: '00'.repeat(32) };
    return state ? Relay.restore(state, accept, () => {}) : new Relay(cfg, accept, () => {});
  }

  /** A fresh session between home and the current VM relay. */
  connect(): void {
    for (const l of this.links) l.up = false;
    const state = { up: true };
    this.links.push(state);
    const vm = this.vm;
    const toVm: SessionLink = {
      send: (type, payload) =>
        setImmediate(() => {
          if (!state.up) return;
          if (type === Home.OPEN) vm.onOpen(JSON.parse(payload.toString()) as Open);
          else vm.onFrame(type, decodeRelay(payload));
        }),
    };
    const toHome = {
      send: (type: number, payload: Buffer) =>
        setImmediate(() => state.up && this.home.onFrame(toVm, type, decodeRelay(payload))),
    };
    const welcome = this.home.attach(toVm, vm.hello('vm'), (this.token += '+'));
    vm.attach(toHome, welcome);
  }

  cut(): void {
    for (const l of this.links) l.up = false;
    this.vm.detach();
  }

  /** The VM moves: fenced, saved at that instant, restored elsewhere, and that copy calls home. */
  migrate(): void {
    this.vm.fence();
    const saved = JSON.parse(JSON.stringify(this.vm.save())) as ReturnType<Relay['save']>;
    this.cut();
    this.vm = this.newVm(saved);
    this.connect();
  }

  /** The program: read what is there, send it back transformed. */
  step(): void {
    const buf = new Uint8Array(4096);
    for (const s of this.vm.streams.values()) {
      // A slow reader (4 reads a turn), so home's window is what holds the clients back.
      for (let k = 0; k < 4; k++) {
        const n = s.reset ? null : s.read(buf);
        if (!n) {
          if (n === 0 && s.finOut === null) s.shutdown(2);
          break;
        }
        s.write(swap(Buffer.from(buf.subarray(0, n))));
      }
    }
  }
}

test(
  'relayed streams stay exactly-once across random session cuts and migrations',
  { timeout: 60_000 },
  async () => {
    const w = new World();
    const addr = await w.home.publish('127.0.0.1', 0, 80);
    const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
    w.connect();
    const prog = setInterval(() => w.step(), 1);
    const rand = rng(42);
    const clients = await Promise.all(
      [1, 2, 3].map(
        () =>
          new Promise<{ sock: net.Socket; got: Buffer[]; sent: Buffer[] }>((res) => {
            const sock = net.connect(port, '127.0.0.1', () => res({ sock, got, sent: [] }));
            const got: Buffer[] = [];
            sock.on('data', (d: Buffer) => got.push(d));
          }),
      ),
    );
    try {
      for (let i = 0; i < 300; i++) {
        for (const c of clients) {
          const len = 1 + Math.floor(rand() * (rand() < 0.1 ? 60_000 : 3000));
          const chunk = Buffer.from(
            Array.from({ length: len }, () => 65 + Math.floor(rand() * 58)),
          );
          c.sent.push(chunk);
          c.sock.write(chunk);
        }
        const r = rand();
        if (r < 0.05) w.migrate();
        else if (r < 0.1) {
          w.cut();
          await new Promise((res) => setTimeout(res, 2));
          w.connect();
        }
        await new Promise((res) => setImmediate(res));
      }
      for (const c of clients) c.sock.end();
      const want = clients.map((c) => swap(Buffer.concat(c.sent)));
      const t0 = Date.now();
      while (
        clients.some((c, i) => Buffer.concat(c.got).length < want[i].length) &&
        Date.now() - t0 < 30_000
      )
        await new Promise((res) => setTimeout(res, 10));
      clients.forEach((c, i) =>
        assert.ok(Buffer.concat(c.got).equals(want[i]), `client ${i}: bytes differ`),
      );
    } finally {
      clearInterval(prog);
      w.home.close();
    }
  },
);
