// packetd (thesis 8.3): the node's only privileged, network-facing code. One
// UDP socket; it verifies boot tokens, keeps each job's credit, and hands VM
// start/stop to a pluggable launcher. It parses tokens and its own datagrams,
// nothing else: no program, image or checkpoint ever passes through here.
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { verifyBootToken, type BootToken } from '../tokens/boot-token.js';
import { MAX_UNITS, verifyElement } from '../tokens/chain.js';
import { signCertificate } from '../tokens/certificate.js';
import { vmKey } from '../tokens/vm-key.js';
import { reasonCode, type Reason } from '../tokens/reasons.js';
import { decodeMessage, encodeMessage, isRequestCode, type MessageOf } from './protocol.js';

export interface LaunchRequest {
  jobId: string; memoryMiB: number; cpuShare: number; ports: number; lifetimeS: number;
  loaderSha256: string; key: Buffer; revive?: string; // revive: the VM id to resume from its suspended state
}
export interface Launched {
  vmId: string; addr: string; pid?: number; exited: Promise<void>;
  notify(line: string): void; suspended(): boolean; stop(): void; purge(): void; // purge: stop and delete its state
}
export type Launcher = (req: LaunchRequest) => Promise<Launched>;
export interface Usage { cpuS: number; rssMiB: number }

export interface PacketdOptions {
  nodeId: string;
  secret: Buffer;
  capacityMiB?: number;     // memory the node sells; each job reserves its limit
  price?: number;           // units per CPU-second (advertised in PONG)
  memPrice?: number;        // units per GiB-second of resident memory
  launcher?: Launcher;      // absent: BOOT is verified, then refused with no-launcher
  usage?: (pid: number) => Usage | null; // what the meter reads (the VM's own figures are never asked for)
  graceS?: number;          // after a notice, how long a VM has to suspend itself
  retentionS?: number;      // how long a suspended VM's state waits for a top-up
  slackMiB?: number;        // resident memory a VM may use beyond its limit (Node itself) before it is purged
  now?: () => number;       // unix seconds; injectable for tests
  log?: (msg: string) => void;
}

// running -> (balance 0, lifetime or eviction) notified -> suspended | ended; suspended -> (top-up) running.
type State = 'starting' | 'running' | 'notified' | 'suspended' | 'ended';
interface Job {
  token: BootToken; vmId: string; last: Buffer; seen: Set<string>; credited: number; spent: number;
  launched?: Launched; certificate?: Buffer; state: State; since: number; deadline: number; cpuS: number; owed: number;
}
export type JobView = Readonly<{ vmId: string; credited: number; spent: number; balance: number; closed: boolean; state: State }>;

type From = { address: string; port: number };
const hex = (b: Buffer) => b.toString('hex');
const mib = (j: Job) => j.token.memoryMiB;

export class Packetd {
  private socket?: dgram.Socket;
  private readonly jobs = new Map<string, Job>();
  // Boot-token nonces seen, kept until the token expires (then it is refused anyway).
  private readonly nonces = new Map<string, { expiry: number; from: string; reply?: Buffer }>();
  private reservedMiB = 0;

  constructor(private readonly o: PacketdOptions) {}

  listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    const s = this.socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.on('message', (msg, rinfo) => {
      this.handle(msg, rinfo)
        .then((reply) => reply && s.send(reply, rinfo.port, rinfo.address, (e) => e && this.log(`send: ${e.message}`)))
        .catch((e: unknown) => this.log(`dropped: ${String(e)}`)); // never let one datagram stop the daemon
    });
    return new Promise((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, host, () => {
        s.off('error', reject).on('error', (e) => this.log(`socket: ${e.message}`));
        resolve(s.address());
      });
    });
  }

  close(): Promise<void> { return new Promise((r) => (this.socket ? this.socket.close(() => r()) : r())); }

  get freeMiB(): number { return Math.max(0, (this.o.capacityMiB ?? 4096) - this.reservedMiB); }

  job(jobId: string): JobView | undefined {
    const j = this.jobs.get(jobId);
    return j && { vmId: j.vmId, credited: j.credited, spent: j.spent, balance: j.credited - j.spent, closed: !!j.certificate, state: j.state };
  }

  // For the meter: charge a job, never below zero; returns the new balance.
  debit(jobId: string, units: number): number | undefined {
    const j = this.jobs.get(jobId);
    if (!j || j.certificate || !(units >= 0)) return undefined;
    j.spent += Math.min(Math.floor(units), j.credited - j.spent);
    return j.credited - j.spent;
  }

  async handle(buf: Buffer, from: From): Promise<Buffer | undefined> { // undefined: no answer
    if (buf.length > 0 && !isRequestCode(buf[0])) return undefined;
    const reqId = buf.length >= 5 ? buf.readUInt32BE(1) : 0;
    const m = decodeMessage(buf);
    if (!m.ok) return this.refuse(reqId, m.reason);
    const r = m.value;
    switch (r.type) {
      case 'PING': return encodeMessage({ type: 'PONG', reqId, nodeId: this.o.nodeId, freeMiB: this.freeMiB, price: this.o.price ?? 1 });
      case 'BOOT': return this.boot(r.token, reqId, `${from.address}:${from.port}:${reqId}`);
      case 'TOPUP': return this.topup(r);
      case 'STATUS': return this.withJob(r, (j) => this.balance(reqId, j));
      case 'REFUND': return this.withJob(r, (j) => this.refund(reqId, j));
      default: return this.refuse(reqId, 'unknown-type');
    }
  }

  private async boot(raw: Buffer, reqId: number, from: string): Promise<Buffer | undefined> {
    const now = this.now();
    const v = verifyBootToken(raw, this.o.secret, this.o.nodeId, now);
    if (!v.ok) return this.refuse(reqId, v.reason);
    const t = v.value, jobId = hex(t.jobId), nonce = hex(t.nonce);
    const seen = this.nonces.get(nonce);
    // A retransmission of the same request gets the same answer (none while the
    // launch is under way: the answer is coming); any other reuse is a replay.
    if (seen) return seen.from !== from ? this.refuse(reqId, 'replayed') : seen.reply;
    if (this.jobs.has(jobId)) return this.refuse(reqId, 'job-exists');
    if (t.memoryMiB > this.freeMiB) return this.refuse(reqId, 'no-capacity');
    if (!this.o.launcher) return this.refuse(reqId, 'no-launcher');
    // Record nonce, job and reservation before the await, so that concurrent copies are refused.
    const entry: { expiry: number; from: string; reply?: Buffer } = { expiry: t.expiry, from };
    this.nonces.set(nonce, entry);
    if (this.nonces.size % 256 === 0) for (const [n, e] of this.nonces) if (e.expiry <= now) this.nonces.delete(n);
    const job: Job = { token: t, vmId: '', last: t.payment, seen: new Set([hex(t.anchor), hex(t.payment)]), credited: t.units, spent: 0, state: 'starting', since: now, deadline: 0, cpuS: 0, owed: 0 };
    this.jobs.set(jobId, job);
    this.reservedMiB += t.memoryMiB;
    let vm: Launched;
    try {
      this.started(job, vm = await this.start(job));
    } catch (e) {
      // Nothing was started: forget the job so that the same token can be tried
      // again, unless it was refunded meanwhile (then it stays closed for good).
      this.log(`launch ${jobId}: ${e instanceof Error ? e.message : String(e)}`);
      if (!job.certificate) { this.jobs.delete(jobId); this.nonces.delete(nonce); this.reservedMiB -= t.memoryMiB; }
      return this.refuse(reqId, 'launch-failed');
    }
    entry.reply = encodeMessage({ type: 'ACCEPTED', reqId, jobId: t.jobId, vmId: vm.vmId, addr: vm.addr, balance: job.credited - job.spent });
    return entry.reply;
  }

  private topup(r: MessageOf<'TOPUP'>): Buffer {
    return this.withJob(r, (j) => {
      if (j.certificate) return this.refuse(r.reqId, 'job-closed');
      if (r.units < 1 || r.units > MAX_UNITS) return this.refuse(r.reqId, 'unit-limit');
      if (j.seen.has(hex(r.element))) return this.refuse(r.reqId, 'already-credited');
      if (!verifyElement(r.element, r.units, j.last)) return this.refuse(r.reqId, 'chain-mismatch');
      j.last = r.element; j.seen.add(hex(r.element)); j.credited += r.units;
      if (j.state === 'suspended') this.revive(j);
      return this.balance(r.reqId, j);
    });
  }

  // Closing is final: a retried REFUND gets the same certificate, never a second one.
  private refund(reqId: number, j: Job): Buffer {
    if (!j.certificate) {
      j.certificate = signCertificate({ nodeId: this.o.nodeId, jobId: j.token.jobId, spent: j.spent, unspent: j.credited - j.spent, last: j.last, issued: this.now() }, this.o.secret);
      this.end(j);
    }
    return encodeMessage({ type: 'CERT', reqId, certificate: j.certificate });
  }

  // The meter (every second): debit what the daemon measures of each VM process,
  // purge a VM over its memory, and run the notice -> grace -> purge and
  // suspended -> retention -> purge clocks.
  tick(dtS: number): void {
    const now = this.now();
    for (const j of this.jobs.values()) {
      if ((j.state === 'notified' || j.state === 'suspended') && now >= j.deadline) { this.log(`purge ${j.vmId}: ${j.state === 'notified' ? 'grace' : 'retention'} over`); this.end(j); continue; }
      const u = j.launched?.pid && (j.state === 'running' || j.state === 'notified') ? this.o.usage?.(j.launched.pid) : null;
      if (!u) continue;
      j.owed += Math.max(0, u.cpuS - j.cpuS) * (this.o.price ?? 1) + (u.rssMiB / 1024) * dtS * (this.o.memPrice ?? 1);
      j.cpuS = u.cpuS;
      const take = Math.min(Math.floor(j.owed), j.credited - j.spent);
      j.spent += take; j.owed -= take;
      if (u.rssMiB > j.token.memoryMiB + (this.o.slackMiB ?? 512)) { this.log(`purge ${j.vmId}: ${Math.round(u.rssMiB)} MiB resident`); this.end(j); }
      else if (j.state === 'running' && j.spent === j.credited) this.notice(j, 'balance');
      else if (j.state === 'running' && now >= j.since + j.token.lifetimeS) this.notice(j, 'lifetime');
    }
  }

  // Eviction: every VM is told to go within `graceS`, as if its balance had run out.
  evict(graceS: number): number {
    let n = 0;
    for (const j of this.jobs.values()) if (j.state === 'running') { this.notice(j, 'evict', graceS); n++; }
    return n;
  }

  /** Whether any VM is still starting or running here. */
  busy(): boolean { return [...this.jobs.values()].some((j) => j.state === 'starting' || j.state === 'running' || j.state === 'notified'); }

  private notice(j: Job, why: string, graceS = this.o.graceS ?? 10): void {
    j.state = 'notified'; j.deadline = this.now() + graceS;
    j.launched?.notify(`notice ${why} ${graceS}`);
  }

  private start(j: Job, revive?: string): Promise<Launched> {
    const t = j.token;
    return this.o.launcher!({ jobId: hex(t.jobId), memoryMiB: t.memoryMiB, cpuShare: t.cpuShare, ports: t.ports, lifetimeS: t.lifetimeS, loaderSha256: hex(t.loaderSha256), key: vmKey(this.o.secret, t.jobId), revive });
  }

  private started(j: Job, vm: Launched): void {
    if (j.certificate) return vm.purge(); // refunded while it was starting
    Object.assign(j, { launched: vm, vmId: vm.vmId, state: 'running', cpuS: 0 });
    void vm.exited.then(() => {
      if (j.launched !== vm || (j.state !== 'running' && j.state !== 'notified')) return;
      if (!vm.suspended()) return this.end(j);
      j.state = 'suspended'; j.deadline = this.now() + (this.o.retentionS ?? 3600);
      this.reservedMiB -= mib(j);
      this.log(`${j.vmId} suspended to disk`);
      if (j.spent < j.credited) this.revive(j); // topped up during its grace
    });
  }

  private revive(j: Job): void {
    if (j.spent >= j.credited || mib(j) > this.freeMiB) return;
    j.state = 'starting'; this.reservedMiB += mib(j);
    this.start(j, j.vmId).then((vm) => { this.started(j, vm); j.since = this.now(); this.log(`${j.vmId} revived`); }, (e: Error) => {
      this.log(`revive ${j.vmId}: ${e.message}`); j.state = 'suspended'; this.reservedMiB -= mib(j);
    });
  }

  // Purge: the VM is killed and its state deleted; the job stays for STATUS and REFUND.
  private end(j: Job): void {
    if (j.state !== 'suspended' && j.state !== 'ended') this.reservedMiB -= mib(j);
    j.state = 'ended';
    try { j.launched?.purge(); } catch (e) { this.log(`purge ${j.vmId}: ${String(e)}`); }
  }

  private withJob(r: { reqId: number; jobId: Buffer }, fn: (j: Job) => Buffer): Buffer {
    const j = this.jobs.get(hex(r.jobId));
    return j ? fn(j) : this.refuse(r.reqId, 'unknown-job');
  }

  private balance(reqId: number, j: Job): Buffer {
    return encodeMessage({ type: 'BALANCE', reqId, jobId: j.token.jobId, balance: j.credited - j.spent, credited: j.credited, spent: j.spent, closed: j.certificate ? 1 : 0 });
  }

  private refuse(reqId: number, reason: Reason): Buffer {
    return encodeMessage({ type: 'REFUSED', reqId, reason: reasonCode(reason) });
  }

  private now(): number { return this.o.now ? this.o.now() : Math.floor(Date.now() / 1000); }
  private log(msg: string): void { this.o.log?.(msg); }
}
