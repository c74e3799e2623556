// The broker's HTTP face: JSON in and out, binary values (tokens, top-ups,
// certificates) as base64. All state and all checks live in the Ledger.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { authenticate, ensureAdmin, type Principal } from './auth.js';
import { BrokerError } from './errors.js';
import { Ledger, type LedgerOptions } from './ledger.js';

const MAX_BODY = 64 * 1024;
type Body = Record<string, unknown>;
// Who may call a route: the admin, a customer acting on its own account, or either.
type Route = [
  method: string,
  path: RegExp,
  who: 'admin' | 'customer' | 'any',
  handler: (ledger: Ledger, m: RegExpExecArray, body: Body, p: Principal) => unknown,
];

const b64 = (b: Buffer) => b.toString('base64');
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (typeof v === 'number' ? v : NaN);
const opt = (v: unknown): number | undefined => (v === undefined ? undefined : num(v));
const forbid = (what: string) =>
  new BrokerError(403, 'forbidden', `${what} belongs to another customer`);

/** The job, if it is the caller's; another customer's looks like none at all. */
function ownJob(l: Ledger, jobId: string, p: Principal): string {
  if (l.job(jobId).customer !== p.id) throw new BrokerError(404, 'unknown-job', `no job ${jobId}`);
  return jobId;
}
function ownAccount(id: string, p: Principal): string {
  if (p.role !== 'admin' && p.id !== id) throw forbid(`account ${id}`);
  return id;
}

const ROUTES: Route[] = [
  ['POST', /^\/v1\/nodes$/, 'admin', (l, _m, b) => l.enrollNode(str(b.id), opt(b.price))],
  ['POST', /^\/v1\/customers$/, 'admin', (l, _m, b) => l.addCustomer(str(b.id), opt(b.balance))],
  [
    'GET',
    /^\/v1\/customers\/([^/]+)$/,
    'any',
    (l, m, _b, p) => l.customer(ownAccount(decodeURIComponent(m[1]), p)),
  ],
  [
    'POST',
    /^\/v1\/customers\/([^/]+)\/deposit$/,
    'admin',
    (l, m, b) => l.deposit(decodeURIComponent(m[1]), num(b.amount)),
  ],
  [
    'POST',
    /^\/v1\/tokens$/,
    'customer',
    (l, _m, b, p) => {
      if (b.customer !== undefined && b.customer !== p.id)
        throw forbid(`account ${str(b.customer)}`);
      const r = l.buy({
        customer: p.id,
        node: str(b.node),
        count: num(b.count),
        memoryMiB: opt(b.memoryMiB),
        cpuShare: opt(b.cpuShare),
        ports: opt(b.ports),
        lifetimeS: opt(b.lifetimeS),
        ttlS: opt(b.ttlS),
        loaderSha256: b.loaderSha256 === undefined ? undefined : str(b.loaderSha256),
      });
      return { ...r, token: b64(r.token) };
    },
  ],
  [
    'GET',
    /^\/v1\/jobs\/([0-9a-f]{32})$/,
    'customer',
    (l, m, _b, p) => l.jobInfo(ownJob(l, m[1], p)),
  ],
  [
    'POST',
    /^\/v1\/jobs\/([0-9a-f]{32})\/topup$/,
    'customer',
    (l, m, b, p) => {
      const r = l.topup(ownJob(l, m[1], p), num(b.count));
      return { ...r, message: b64(r.message) };
    },
  ],
  [
    'POST',
    /^\/v1\/redemptions$/,
    'customer',
    (l, _m, b, p) => l.redeem(Buffer.from(str(b.certificate), 'base64'), p.id),
  ],
];

async function readJson(req: http.IncomingMessage): Promise<Body> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY)
      throw new BrokerError(413, 'too-large', `request body over ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  if (size === 0) return {};
  try {
    const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Body;
  } catch {
    /* reported below */
  }
  throw new BrokerError(400, 'bad-json', 'body must be a JSON object');
}

/** What the broker logs to (pino in `roam broker`): every request, with who asked and the answer. */
export interface BrokerLog {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
  error(o: object, msg: string): void;
}

export interface BrokerServer {
  url: string;
  adminKeyFile: string;
  /** True when this start created the admin credential (first start of a ledger). */
  adminKeyCreated: boolean;
  ledger: Ledger;
  close(): Promise<void>;
}

export async function startBroker(
  o: {
    db: string;
    host?: string;
    port?: number;
    adminKeyFile?: string; // default: DB.admin
    log?: BrokerLog;
  } & LedgerOptions,
): Promise<BrokerServer> {
  const ledger = new Ledger(o.db, o);
  const adminKeyFile = o.adminKeyFile ?? `${o.db}.admin`;
  const created = ensureAdmin(ledger.db, adminKeyFile, Math.floor(Date.now() / 1000));
  const server = http.createServer(async (req, res) => {
    let status = 200,
      out: unknown,
      who: Principal | undefined;
    try {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const hits = ROUTES.filter(([, re]) => re.test(path));
      const route = hits.find(([method]) => method === req.method);
      if (!route)
        throw hits.length
          ? new BrokerError(405, 'bad-method', `${req.method} not allowed on ${path}`)
          : new BrokerError(404, 'not-found', `no route ${path}`);
      const p = (who = authenticate(ledger.db, req.headers.authorization));
      if (route[2] !== 'any' && route[2] !== p.role)
        throw new BrokerError(
          403,
          'forbidden',
          `${req.method} ${path} needs the ${route[2]} credential`,
        );
      out = route[3](ledger, route[1].exec(path)!, await readJson(req), p);
    } catch (e) {
      if (e instanceof BrokerError) {
        status = e.status;
        out = { error: e.code, message: e.message };
      } else {
        status = 500;
        out = { error: 'internal', message: 'internal error' };
        o.log?.error({ err: e instanceof Error ? e.stack : String(e) }, 'internal error');
      }
    }
    const line = { method: req.method, url: req.url, status, who: who && `${who.role}:${who.id}` };
    if (status === 401 || status === 403) o.log?.warn(line, 'refused');
    else o.log?.info(line, 'request');
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(out));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', resolve);
  });
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    url: `http://${host}:${a.port}`,
    adminKeyFile,
    adminKeyCreated: created,
    ledger,
    close: () =>
      new Promise((resolve) =>
        server.close(() => {
          ledger.close();
          resolve();
        }),
      ),
  };
}
