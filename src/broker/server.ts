// The broker's HTTP face: JSON in and out, binary values (tokens, top-ups,
// certificates) as base64. All state and all checks live in the Ledger.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BrokerError } from './errors.js';
import { Ledger, type LedgerOptions } from './ledger.js';

const MAX_BODY = 64 * 1024;
type Body = Record<string, unknown>;
type Route = [
  method: string,
  path: RegExp,
  handler: (ledger: Ledger, m: RegExpExecArray, body: Body) => unknown,
];

const b64 = (b: Buffer) => b.toString('base64');
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (typeof v === 'number' ? v : NaN);
const opt = (v: unknown): number | undefined => (v === undefined ? undefined : num(v));

const ROUTES: Route[] = [
  ['POST', /^\/v1\/nodes$/, (l, _m, b) => l.enrollNode(str(b.id), opt(b.price))],
  ['POST', /^\/v1\/customers$/, (l, _m, b) => l.addCustomer(str(b.id), opt(b.balance))],
  ['GET', /^\/v1\/customers\/([^/]+)$/, (l, m) => l.customer(decodeURIComponent(m[1]))],
  [
    'POST',
    /^\/v1\/customers\/([^/]+)\/deposit$/,
    (l, m, b) => l.deposit(decodeURIComponent(m[1]), num(b.amount)),
  ],
  [
    'POST',
    /^\/v1\/tokens$/,
    (l, _m, b) => {
      const r = l.buy({
        customer: str(b.customer),
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
  ['GET', /^\/v1\/jobs\/([0-9a-f]{32})$/, (l, m) => l.jobInfo(m[1])],
  [
    'POST',
    /^\/v1\/jobs\/([0-9a-f]{32})\/topup$/,
    (l, m, b) => {
      const r = l.topup(m[1], num(b.count));
      return { ...r, message: b64(r.message) };
    },
  ],
  [
    'POST',
    /^\/v1\/redemptions$/,
    (l, _m, b) => l.redeem(Buffer.from(str(b.certificate), 'base64')),
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

export interface BrokerServer {
  url: string;
  ledger: Ledger;
  close(): Promise<void>;
}

export async function startBroker(
  o: { db: string; host?: string; port?: number; log?: (msg: string) => void } & LedgerOptions,
): Promise<BrokerServer> {
  const ledger = new Ledger(o.db, o);
  const server = http.createServer(async (req, res) => {
    let status = 200,
      out: unknown;
    try {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const hits = ROUTES.filter(([, re]) => re.test(path));
      const route = hits.find(([method]) => method === req.method);
      if (!route)
        throw hits.length
          ? new BrokerError(405, 'bad-method', `${req.method} not allowed on ${path}`)
          : new BrokerError(404, 'not-found', `no route ${path}`);
      out = route[2](ledger, route[1].exec(path)!, await readJson(req));
    } catch (e) {
      if (e instanceof BrokerError) {
        status = e.status;
        out = { error: e.code, message: e.message };
      } else {
        status = 500;
        out = { error: 'internal', message: 'internal error' };
        o.log?.(`broker: ${e instanceof Error ? e.stack : String(e)}`);
      }
    }
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
