// The broker's ledger (thesis 8.2): nodes and their shared secrets, customer
// accounts, one hash chain per job, and refunds. Every money movement runs in
// one SQLite transaction and is written to the `ledger` table.
import Database from 'better-sqlite3';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import {
  MAX_UNITS,
  decodeCertificate,
  encodeTopUp,
  iterate,
  mintBootToken,
  newSeed,
  verifyCertificate,
  vmKey,
} from '../tokens/index.js';
import { issueKey } from './auth.js';
import { BrokerError } from './errors.js';
import { migrate } from './migrations.js';

export interface LedgerOptions {
  chainLength?: number; // n of each new chain: the most units one job can ever buy
  tokenTtlS?: number; // default time a boot token stays valid
  now?: () => number; // unix seconds
}
export interface Limits {
  memoryMiB: number;
  cpuShare: number;
  ports: number;
  lifetimeS: number;
}
export interface BuyRequest extends Partial<Limits> {
  customer: string;
  node: string;
  count: number;
  loaderSha256?: string;
  ttlS?: number;
}
export const DEFAULT_LIMITS: Limits = { memoryMiB: 256, cpuShare: 100, ports: 4, lifetimeS: 3600 };

interface JobRow {
  id: string;
  customer: string;
  node: string;
  seed: Buffer;
  length: number;
  released: number;
  price: number;
  expiry: number;
}

const NAME = /^[A-Za-z0-9._-]{1,64}$/;
// Money per deposit, and in one account: far beyond any real use, far below 2^53.
export const MAX_AMOUNT = 1_000_000_000;
export const MAX_BALANCE = 1_000_000_000_000;
const JOB_ID = /^[0-9a-f]{32}$/;

function check(ok: boolean, code: string, message: string, status = 400): asserts ok {
  if (!ok) throw new BrokerError(status, code, message);
}
const isInt = (v: unknown, min: number, max: number): v is number =>
  Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;

export class Ledger {
  readonly db: Database.Database;
  private readonly chainLength: number;

  constructor(
    file: string,
    private readonly o: LedgerOptions = {},
  ) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('foreign_keys = ON');
    migrate(this.db);
    this.chainLength = o.chainLength ?? 100_000;
  }

  close(): void {
    this.db.close();
  }
  private now(): number {
    return this.o.now ? this.o.now() : Math.floor(Date.now() / 1000);
  }

  // The secret is returned here only; after that it lives in the ledger and on the node.
  enrollNode(id: string, price = 1): { id: string; secret: string; price: number } {
    check(NAME.test(id), 'bad-node-id', 'node id: 1-64 of A-Z a-z 0-9 . _ -');
    check(isInt(price, 0, 1e9), 'bad-price', 'price: an integer >= 0');
    const secret = randomBytes(32);
    try {
      this.db
        .prepare('INSERT INTO nodes (id, secret, price, created) VALUES (?, ?, ?, ?)')
        .run(id, secret, price, this.now());
    } catch (e) {
      throw (e as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
        ? new BrokerError(409, 'node-exists', `node ${id} is already enrolled`)
        : e;
    }
    return { id, secret: secret.toString('hex'), price };
  }

  // The customer's credential is returned here only; the ledger keeps its hash.
  addCustomer(id: string, balance = 0): { id: string; balance: number; key: string } {
    check(NAME.test(id), 'bad-customer-id', 'customer id: 1-64 of A-Z a-z 0-9 . _ -');
    check(isInt(balance, 0, MAX_AMOUNT), 'bad-amount', `balance: an integer in 0..${MAX_AMOUNT}`);
    let key = '';
    this.db
      .transaction(() => {
        check(
          !this.db.prepare('SELECT 1 FROM customers WHERE id = ?').get(id),
          'customer-exists',
          `customer ${id} exists`,
          409,
        );
        this.db
          .prepare('INSERT INTO customers (id, balance, created) VALUES (?, 0, ?)')
          .run(id, this.now());
        key = issueKey(this.db, 'customer', id, this.now());
        if (balance > 0) this.move(id, balance, 'deposit', null);
      })
      .immediate();
    return { ...this.customer(id), key };
  }

  deposit(id: string, amount: number): { id: string; balance: number } {
    check(isInt(amount, 1, MAX_AMOUNT), 'bad-amount', `amount: an integer in 1..${MAX_AMOUNT}`);
    this.db
      .transaction(() => {
        check(
          this.customer(id).balance + amount <= MAX_BALANCE,
          'bad-amount',
          `a balance may not exceed ${MAX_BALANCE}`,
        );
        this.move(id, amount, 'deposit', null);
      })
      .immediate();
    return this.customer(id);
  }

  customer(id: string): { id: string; balance: number } {
    const row = this.db.prepare('SELECT id, balance FROM customers WHERE id = ?').get(id) as
      { id: string; balance: number } | undefined;
    check(!!row, 'unknown-customer', `no customer ${id}`, 404);
    return row;
  }

  // A new job: a fresh chain for this job and this node only, so its units
  // cannot be spent anywhere else (the node refuses tokens for other nodes).
  buy(r: BuyRequest) {
    check(
      typeof r.customer === 'string' && typeof r.node === 'string',
      'bad-request',
      'customer and node are required',
    );
    const lim: Limits = {
      ...DEFAULT_LIMITS,
      ...Object.fromEntries(
        Object.entries(r).filter(([k, v]) => k in DEFAULT_LIMITS && v !== undefined),
      ),
    };
    check(
      isInt(r.count, 1, Math.min(MAX_UNITS, this.chainLength)),
      'bad-count',
      `count: 1..${Math.min(MAX_UNITS, this.chainLength)}`,
    );
    check(
      isInt(lim.memoryMiB, 1, 2 ** 32 - 1) &&
        isInt(lim.cpuShare, 1, 65535) &&
        isInt(lim.ports, 0, 65535) &&
        isInt(lim.lifetimeS, 1, 2 ** 32 - 1),
      'bad-limits',
      'limits out of range',
    );
    const loader = r.loaderSha256 ?? '0'.repeat(64);
    check(/^[0-9a-f]{64}$/.test(loader), 'bad-loader', 'loaderSha256: 64 hex digits');
    const ttl = r.ttlS ?? this.o.tokenTtlS ?? 600;
    check(isInt(ttl, 1, 30 * 86400), 'bad-ttl', 'ttlS: 1 s .. 30 days');
    const seed = newSeed(),
      n = this.chainLength,
      jobId = randomBytes(16);
    const anchor = iterate(seed, n),
      payment = iterate(seed, n - r.count);
    const expiry = this.now() + ttl;
    return this.db
      .transaction(() => {
        const node = this.db.prepare('SELECT secret, price FROM nodes WHERE id = ?').get(r.node) as
          { secret: Buffer; price: number } | undefined;
        check(!!node, 'unknown-node', `no node ${r.node}`, 404);
        const cost = r.count * node.price;
        this.charge(r.customer, cost);
        this.db
          .prepare(
            'INSERT INTO jobs (id, customer, node, seed, length, released, price, expiry, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
          )
          .run(
            jobId.toString('hex'),
            r.customer,
            r.node,
            seed,
            n,
            r.count,
            node.price,
            expiry,
            this.now(),
          );
        this.move(r.customer, -cost, 'buy', jobId.toString('hex'));
        const token = mintBootToken(
          {
            nodeId: r.node,
            jobId,
            anchor,
            payment,
            units: r.count,
            ...lim,
            loaderSha256: Buffer.from(loader, 'hex'),
            expiry,
          },
          node.secret,
        );
        // The VM's key: the node derives the same from its secret, so it never travels to the node.
        const key = vmKey(node.secret, jobId).toString('hex');
        return {
          jobId: jobId.toString('hex'),
          node: r.node,
          units: r.count,
          expiry,
          cost,
          token,
          key,
          balance: this.customer(r.customer).balance,
        };
      })
      .immediate();
  }

  // Releases the next `count` elements: the customer gets s_{n-released-count}.
  topup(jobId: string, count: number) {
    return this.db
      .transaction(() => {
        const job = this.job(jobId);
        check(!this.redeemed(jobId), 'job-closed', `job ${jobId} was refunded`, 409);
        check(isInt(count, 1, MAX_UNITS), 'bad-count', `count: 1..${MAX_UNITS}`);
        check(
          job.released + count <= job.length,
          'chain-exhausted',
          `job ${jobId} has ${job.length - job.released} units left in its chain; buy a new token`,
          409,
        );
        const cost = count * job.price;
        this.charge(job.customer, cost);
        const released = job.released + count;
        this.db.prepare('UPDATE jobs SET released = ? WHERE id = ?').run(released, jobId);
        this.move(job.customer, -cost, 'topup', jobId);
        const element = iterate(job.seed, job.length - released);
        const message = encodeTopUp({ jobId: Buffer.from(jobId, 'hex'), element, units: count });
        return {
          jobId,
          units: count,
          released,
          element: element.toString('hex'),
          message,
          cost,
          balance: this.customer(job.customer).balance,
        };
      })
      .immediate();
  }

  // Refunds, once per job, every released unit the node says was not spent
  // (including elements never sent: the certificate proves the job is closed).
  // `customer`: the caller, who must own the job (another's looks unknown).
  redeem(certificate: Buffer, customer?: string) {
    const p = decodeCertificate(certificate);
    check(p.ok, 'bad-certificate', `certificate: ${p.ok ? '' : p.reason}`);
    const jobId = p.value.jobId.toString('hex');
    return this.db
      .transaction(() => {
        const job = this.job(jobId);
        check(
          customer === undefined || job.customer === customer,
          'unknown-job',
          `no job ${jobId}`,
          404,
        );
        const secret = (
          this.db.prepare('SELECT secret FROM nodes WHERE id = ?').get(job.node) as {
            secret: Buffer;
          }
        ).secret;
        const v = verifyCertificate(certificate, secret);
        check(
          v.ok,
          'forged-certificate',
          'certificate signature does not verify with the node of this job',
        );
        const c = v.value,
          certId = c.certId.toString('hex');
        check(
          c.nodeId === job.node,
          'wrong-node',
          `certificate from ${c.nodeId}, job was sold for ${job.node}`,
        );
        check(
          !this.redeemed(jobId) &&
            !this.db.prepare('SELECT 1 FROM redemptions WHERE cert_id = ?').get(certId),
          'already-redeemed',
          `job ${jobId} was already refunded`,
          409,
        );
        const credited = c.spent + c.unspent;
        check(
          credited >= 1 && credited <= job.released,
          'bad-certificate',
          'certificate credits more units than were sold',
        );
        check(
          timingSafeEqual(iterate(job.seed, job.length - credited), c.last),
          'chain-mismatch',
          'certificate element is not s_{n-credited}',
        );
        const units = job.released - c.spent,
          amount = units * job.price;
        this.db
          .prepare(
            'INSERT INTO redemptions (cert_id, job, units, amount, at) VALUES (?, ?, ?, ?, ?)',
          )
          .run(certId, jobId, units, amount, this.now());
        if (amount > 0) this.move(job.customer, amount, 'refund', jobId);
        return { jobId, certId, units, amount, balance: this.customer(job.customer).balance };
      })
      .immediate();
  }

  job(jobId: string): JobRow {
    check(JOB_ID.test(jobId), 'bad-job-id', 'job id: 32 hex digits');
    const row = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(jobId) as JobRow | undefined;
    check(!!row, 'unknown-job', `no job ${jobId}`, 404);
    return row;
  }

  // What a customer may see of a job: never the seed.
  jobInfo(jobId: string) {
    const j = this.job(jobId);
    return {
      jobId,
      customer: j.customer,
      node: j.node,
      length: j.length,
      released: j.released,
      expiry: j.expiry,
      refunded: this.redeemed(jobId),
      element: iterate(j.seed, j.length - j.released).toString('hex'),
    };
  }

  private redeemed(jobId: string): boolean {
    return !!this.db.prepare('SELECT 1 FROM redemptions WHERE job = ?').get(jobId);
  }

  private charge(customer: string, cost: number): void {
    check(
      this.customer(customer).balance >= cost,
      'insufficient-funds',
      `customer ${customer} cannot pay ${cost}`,
      402,
    );
  }

  private move(customer: string, delta: number, kind: string, job: string | null): void {
    this.db.prepare('UPDATE customers SET balance = balance + ? WHERE id = ?').run(delta, customer);
    this.db
      .prepare('INSERT INTO ledger (customer, delta, kind, job, at) VALUES (?, ?, ?, ?, ?)')
      .run(customer, delta, kind, job, this.now());
  }
}
