// packetd (thesis 8.3): the node's only privileged, network-facing code. One
// UDP socket; it verifies boot tokens, keeps each job's credit, has a launcher
// start the job's VM, and meters it: debits what the VM process uses, tells it
// to go when its credit or lifetime ends, purges it after a grace period, and
// revives a VM that suspended itself when it is topped up. It parses tokens and
// its own datagrams, nothing else: no program, image or checkpoint passes here.
// A job's requests carry a MAC under the job's key; the job table is on disk
// before any answer (store.ts); chain hashing has a budget per source.
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { decodeBootToken, verifyBootToken, type BootToken } from '../tokens/boot-token.js';
import { MAX_UNITS, verifyElement } from '../tokens/chain.js';
import { signCertificate } from '../tokens/certificate.js';
import { macOk, REQUEST_LABEL, vmKey } from '../tokens/mac.js';
import { REASONS, type Reason } from '../tokens/reasons.js';
import { decodeMessage, encodeMessage, type Message } from './protocol.js';
import type { JobStore, Saved } from './store.js';

// revive: the VM to resume from the state it suspended to
export type LaunchRequest = {
  jobId: string;
  key: Buffer;
  loaderSha256: string;
  memoryMiB: number;
  cpuShare: number;
  ports: number;
  revive?: string;
};
export interface Launched {
  vmId: string;
  pid?: number;
  addr: string;
  exited: Promise<void>;
  usage(): { cpuS: number; rssMiB: number; diskMiB?: number } | null;
  notify(line: string): void;
  suspended(): boolean;
  purge(): void; // kill and delete its state
}

export interface PacketdOptions {
  nodeId: string;
  secret: Buffer;
  launcher?: (req: LaunchRequest) => Promise<Launched>; // absent: BOOT is verified, then refused with no-launcher
  recover?: (vmId: string, pid?: number) => Launched; // a VM of the daemon before a restart
  store?: JobStore; // where changes are written
  saved?: Map<string, Saved>; // the job table as loaded from it
  capacity?: number; // MiB the node sells; each job reserves its limit (as roam node names them)
  price?: number;
  memPrice?: number; // units per CPU-second (advertised in PONG), per GiB-second resident
  grace?: number;
  retention?: number; // to suspend after a notice; for a suspended VM to be topped up
  topupBudget?: number; // chain hashes one source may cost per second (the node: 4x)
  vmOverhead?: number; // resident memory a VM may use beyond its token's (Node itself)
  vmReserve?: number; // capacity each VM holds beyond its token's memory
  now?: () => number;
  log?: (msg: string) => void; // now: unix seconds
}

// running (from BOOT, or a VM still starting) -> (no credit, lifetime, eviction) notified -> suspended | ended;
// suspended -> (top-up) running. Running and notified VMs hold their memory limit.
export const STATES = ['running', 'notified', 'suspended', 'ended'] as const;
type Job = Omit<Saved, 'token' | 'last' | 'certificate' | 'state'> & {
  token: BootToken;
  raw: Buffer;
  last: Buffer;
  certificate?: Buffer;
  vm?: Launched;
  state: (typeof STATES)[number];
  cpuS: number;
  owed: number;
};

const hex = (b: Buffer) => b.toString('hex');
const live = (j: Job) => j.state === 'running' || j.state === 'notified';

export class Packetd {
  private socket?: dgram.Socket;
  private readonly jobs = new Map<string, Job>();
  // The answer to each booted nonce, for a retransmission from the same source.
  private readonly replies = new Map<string, { from: string; reply?: Buffer }>();
  private readonly spentHashes = new Map<string, number>(); // this second's: per source, job, and '*'
  private second = 0;
  private evicting = false;

  constructor(private readonly o: PacketdOptions) {
    for (const [id, r] of o.saved ?? []) this.restore(id, r);
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    const s = (this.socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4'));
    // Never let one datagram stop the daemon.
    s.on(
      'message',
      (msg, from) =>
        void this.handle(msg, from).then(
          (r) => r && s.send(r, from.port, from.address),
          (e: unknown) => this.log(`dropped: ${String(e)}`),
        ),
    );
    await new Promise<void>((ok, fail) => s.once('error', fail).bind(port, host, () => ok()));
    s.removeAllListeners('error').on('error', (e) => this.log(`socket: ${e.message}`));
    return s.address();
  }

  close(): Promise<void> {
    return new Promise((r) => (this.socket ? this.socket.close(() => r()) : r()));
  }
  get freeMiB(): number {
    return [...this.jobs.values()].reduce(
      (free, j) => (live(j) ? free - j.token.memoryMiB - (this.o.vmReserve ?? 0) : free),
      this.o.capacity ?? 4096,
    );
  }
  job(jobId: string): Readonly<Job> | undefined {
    return this.jobs.get(jobId);
  }
  busy(): boolean {
    return [...this.jobs.values()].some(live);
  }

  async handle(buf: Buffer, from: { address: string; port: number }): Promise<Buffer | undefined> {
    // undefined: no answer
    if (buf[0] >= 0x80) return undefined; // a reply type: never answered, so two daemons cannot bounce datagrams
    const reqId = buf.length >= 5 ? buf.readUInt32BE(1) : 0,
      m = decodeMessage(buf);
    if (!m.ok) return this.refuse(reqId, m.reason);
    const r = m.value;
    if (r.type === 'PING')
      return encodeMessage({
        type: 'PONG',
        reqId,
        nodeId: this.o.nodeId,
        freeMiB: this.freeMiB,
        price: this.o.price ?? 1,
      });
    if (r.type === 'BOOT')
      return this.boot(r.token, reqId, `${from.address}:${from.port}:${reqId}`);
    if (!('mac' in r)) return this.refuse(reqId, 'unknown-type');
    // The MAC first: without the job's key nothing is looked up, hashed or changed.
    if (!macOk(vmKey(this.o.secret, r.jobId), REQUEST_LABEL, buf.subarray(0, -32), r.mac))
      return this.refuse(reqId, 'unauthenticated');
    const j = this.jobs.get(hex(r.jobId));
    if (!j) return this.refuse(reqId, 'unknown-job');
    if (r.type === 'TOPUP') return this.topup(r, j, from.address);
    return r.type === 'STATUS' ? this.balance(reqId, j) : this.refund(reqId, j);
  }

  private async boot(raw: Buffer, reqId: number, from: string): Promise<Buffer | undefined> {
    const now = this.now(),
      v = verifyBootToken(raw, this.o.secret, this.o.nodeId, now);
    if (!v.ok) return this.refuse(reqId, v.reason);
    const t = v.value,
      jobId = hex(t.jobId),
      seen = this.replies.get(hex(t.nonce));
    // A retransmission of the same request gets the same answer (none while the
    // launch is under way: the answer is coming); any other reuse is a replay.
    if (seen) return seen.from !== from ? this.refuse(reqId, 'replayed') : seen.reply;
    const known = this.jobs.get(jobId); // booted before a restart, or another token for the job
    if (known) return this.refuse(reqId, known.raw.equals(raw) ? 'replayed' : 'job-exists');
    if (t.memoryMiB + (this.o.vmReserve ?? 0) > this.freeMiB)
      return this.refuse(reqId, 'no-capacity');
    if (!this.o.launcher) return this.refuse(reqId, 'no-launcher');
    // Record the job and its reservation before the await, so that concurrent copies are refused,
    // and on disk first, so that a crash during the launch cannot let the token boot again.
    const entry: { from: string; reply?: Buffer } = { from };
    this.replies.set(hex(t.nonce), entry);
    const job: Job = { token: t, raw, last: t.payment, credited: t.units, spent: 0 } as Job;
    Object.assign(job, { state: 'running', since: now, deadline: 0, cpuS: 0, owed: 0 });
    this.jobs.set(jobId, job);
    this.save(job);
    const vm = await this.start(job);
    // Nothing was started: forget the job so that the same token can be tried
    // again, unless it was refunded meanwhile (then it stays closed for good).
    if (!vm && !job.certificate) {
      this.jobs.delete(jobId);
      this.replies.delete(hex(t.nonce));
      this.o.store?.save([[jobId, null]]);
    }
    if (!vm) return this.refuse(reqId, 'launch-failed');
    return (entry.reply = encodeMessage({
      type: 'ACCEPTED',
      reqId,
      jobId: t.jobId,
      vmId: vm.vmId,
      addr: vm.addr,
      balance: job.credited - job.spent,
    }));
  }

  private topup(r: Extract<Message, { type: 'TOPUP' }>, j: Job, source: string): Buffer {
    if (j.certificate) return this.refuse(r.reqId, 'job-closed');
    if (r.units < 1 || r.units > MAX_UNITS) return this.refuse(r.reqId, 'unit-limit');
    if (r.element.equals(j.last)) return this.refuse(r.reqId, 'already-credited');
    // Verifying costs r.units hashes from the last credited element: a budget per source, per job
    // (forged source addresses share it) and for the node, renewed every second.
    if (this.second !== this.now()) this.spentHashes.clear();
    this.second = this.now();
    const b = this.o.topupBudget ?? 4 * MAX_UNITS,
      caps = { [source]: b, [hex(r.jobId)]: b, '*': 4 * b };
    if (Object.entries(caps).some(([k, cap]) => (this.spentHashes.get(k) ?? 0) + r.units > cap))
      return this.refuse(r.reqId, 'rate-limited');
    for (const k in caps) this.spentHashes.set(k, (this.spentHashes.get(k) ?? 0) + r.units);
    if (!verifyElement(r.element, r.units, j.last)) return this.refuse(r.reqId, 'chain-mismatch');
    j.last = r.element;
    j.credited += r.units;
    this.save(j);
    if (j.state === 'suspended') void this.start(j);
    else if (j.state === 'notified' && !this.evicting) j.state = 'running'; // it asked its home in time
    return this.balance(r.reqId, j);
  }

  // Closing is final: a retried REFUND gets the same certificate, never a second one.
  private refund(reqId: number, j: Job): Buffer {
    if (!j.certificate) {
      j.certificate = signCertificate(
        {
          nodeId: this.o.nodeId,
          jobId: j.token.jobId,
          spent: j.spent,
          unspent: j.credited - j.spent,
          last: j.last,
          issued: this.now(),
        },
        this.o.secret,
      );
      this.end(j, 'refunded'); // saves the certificate before it is sent
    }
    return encodeMessage({ type: 'CERT', reqId, certificate: j.certificate });
  }

  // The meter, every dtS seconds: debit what each VM process used, purge one
  // over its memory, and run the notice -> grace and suspended -> retention clocks.
  tick(dtS: number): void {
    const now = this.now(),
      changed: Job[] = [];
    for (const j of this.jobs.values()) {
      if ((j.state === 'notified' || j.state === 'suspended') && now >= j.deadline) {
        this.end(j, `${j.state === 'notified' ? 'grace' : 'retention'} over`);
        continue;
      }
      const u = live(j) && j.vm?.usage();
      if (!u) continue;
      j.owed +=
        Math.max(0, u.cpuS - j.cpuS) * (this.o.price ?? 1) +
        (u.rssMiB / 1024) * dtS * (this.o.memPrice ?? 1);
      j.cpuS = u.cpuS;
      const take = Math.min(Math.floor(j.owed), j.credited - j.spent);
      j.spent += take;
      j.owed -= take;
      if (take) changed.push(j);
      // Its folder may hold a suspension (its memory) and as much again of its own.
      if (u.rssMiB > j.token.memoryMiB + (this.o.vmOverhead ?? 512))
        this.end(j, `${Math.round(u.rssMiB)} MiB resident`);
      else if ((u.diskMiB ?? 0) > 2 * j.token.memoryMiB + 256)
        this.end(j, `${Math.round(u.diskMiB!)} MiB on disk`);
      else if (
        j.state === 'running' &&
        (j.spent === j.credited || now >= j.since + j.token.lifetimeS)
      )
        this.notice(j, j.spent === j.credited ? 'balance' : 'lifetime');
    }
    this.save(...changed); // one fsync for the whole tick
  }

  // A host that must be emptied tells every VM to go, as if its credit had run out.
  evict(grace: number): number {
    this.evicting = true; // and none is revived from now on
    return [...this.jobs.values()]
      .filter((j) => j.state === 'running')
      .map((j) => this.notice(j, 'evict', grace)).length;
  }

  private notice(j: Job, why: string, grace = this.o.grace ?? 10): void {
    Object.assign(j, { state: 'notified', deadline: this.now() + grace });
    this.save(j);
    j.vm?.notify(`notice ${why} ${grace}`);
  }

  // Start (or revive) the job's VM and watch it.
  private async start(j: Job): Promise<Launched | null> {
    const t = j.token,
      revive = j.state === 'suspended' ? j.vmId : undefined;
    if (
      revive &&
      (this.evicting ||
        j.spent >= j.credited ||
        t.memoryMiB > this.freeMiB ||
        this.now() >= j.since + t.lifetimeS)
    )
      return null;
    Object.assign(j, { state: 'running', cpuS: 0, vm: undefined }); // its lifetime runs from the BOOT
    const vm = await this.o.launcher!({
      jobId: hex(t.jobId),
      key: vmKey(this.o.secret, t.jobId),
      loaderSha256: hex(t.loaderSha256),
      memoryMiB: t.memoryMiB,
      cpuShare: t.cpuShare,
      ports: t.ports,
      revive,
    }).catch((e: Error) => void this.log(`launch ${hex(t.jobId)}: ${e.message}`));
    if (!vm || j.certificate) {
      vm?.purge(); // refunded while it was starting
      if (!j.certificate) Object.assign(j, { state: revive ? 'suspended' : 'ended' });
      return vm || null;
    }
    if (revive) this.log(`${vm.vmId} revived`);
    this.watch(j, vm);
    return vm;
  }

  // When the VM exits it has either suspended itself (kept for the retention period) or ended.
  private watch(j: Job, vm: Launched): void {
    Object.assign(j, { vm, vmId: vm.vmId, pid: vm.pid });
    this.save(j);
    void vm.exited.then(() => {
      if (j.vm !== vm || !live(j)) return;
      if (!vm.suspended()) return this.end(j, 'exited');
      Object.assign(j, { state: 'suspended', deadline: this.now() + (this.o.retention ?? 3600) });
      this.save(j);
      this.log(`${vm.vmId} suspended to disk`);
      void this.start(j); // it may have been topped up during its grace
    });
  }

  // After a restart: a VM that was running saw the daemon's pipe close and is
  // suspending itself; it is watched again, with a grace to finish.
  private restore(id: string, r: Saved): void {
    const p = decodeBootToken(Buffer.from(r.token, 'hex'));
    if (!p.ok) return this.log(`job ${id}: unreadable token in the job table`);
    const j: Job = { ...r, token: p.value, raw: Buffer.from(r.token, 'hex') } as unknown as Job;
    Object.assign(j, { last: Buffer.from(r.last, 'hex'), cpuS: 0, owed: 0 });
    if (r.certificate) j.certificate = Buffer.from(r.certificate, 'hex');
    this.jobs.set(id, j);
    if (!live(j)) return;
    if (!j.vmId || !this.o.recover) return this.end(j, 'lost in a restart');
    Object.assign(j, { state: 'notified', deadline: this.now() + (this.o.grace ?? 10) });
    this.watch(j, this.o.recover(j.vmId, j.pid));
  }

  // Purge: the VM is killed and its state deleted; the job stays for STATUS and REFUND.
  private end(j: Job, why: string): void {
    if (j.state !== 'ended') this.log(`purge ${j.vm?.vmId ?? hex(j.token.jobId)}: ${why}`);
    j.state = 'ended';
    this.save(j);
    if (j.vm) j.vm.purge();
    else if (j.vmId) this.o.recover?.(j.vmId).purge();
  }

  private save(...jobs: Job[]): void {
    this.o.store?.save(
      jobs.map((j) => [
        hex(j.token.jobId),
        {
          ...{ token: hex(j.raw), last: hex(j.last), credited: j.credited, spent: j.spent },
          ...{ state: j.state, since: j.since, deadline: j.deadline, vmId: j.vmId, pid: j.pid },
          certificate: j.certificate && hex(j.certificate),
        },
      ]),
    );
  }

  private balance(reqId: number, j: Job): Buffer {
    return encodeMessage({
      type: 'BALANCE',
      reqId,
      jobId: j.token.jobId,
      balance: j.credited - j.spent,
      credited: j.credited,
      spent: j.spent,
      closed: j.certificate ? 1 : 0,
      state: STATES.indexOf(j.state),
    });
  }

  private refuse(reqId: number, reason: Reason): Buffer {
    return encodeMessage({ type: 'REFUSED', reqId, reason: REASONS.indexOf(reason) });
  }

  private now(): number {
    return this.o.now ? this.o.now() : Math.floor(Date.now() / 1000);
  }
  private log(msg: string): void {
    this.o.log?.(msg);
  }
}
