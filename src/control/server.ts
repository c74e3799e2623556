// `roam control`'s HTTP face. Everyone authenticates with a bearer key: the
// admin enrols customers and nodes; a customer uploads programs and posts
// workload descriptions; a node (its agent) fetches its own description, with
// the Pulse H(s) and the rendezvous servers in headers, and reports back. A
// node is known by its key alone, so it can read no other node's description.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ControlService, type ServiceOptions } from './service.js';
import { applyReports, checkReports } from './reports.js';
import { ControlError } from './workload.js';
import type { Sql } from './store.js';

const MAX_JSON = 1 << 20;
const MAX_PROGRAM = 32 << 20;
type Who = 'admin' | 'customer' | 'node';
type Reply = { status?: number; json?: unknown; bytes?: Buffer; headers?: Record<string, string> };
type Handler = (
  svc: ControlService,
  id: string,
  m: RegExpExecArray,
  req: http.IncomingMessage,
) => Promise<Reply>;

async function body(req: http.IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > max) throw new ControlError(413, 'too-large', `request body over ${max} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

async function json(req: http.IncomingMessage): Promise<unknown> {
  try {
    return JSON.parse((await body(req, MAX_JSON)).toString('utf8')) as unknown;
  } catch (e) {
    if (e instanceof ControlError) throw e;
    throw new ControlError(400, 'bad-json', 'body must be JSON');
  }
}

const idOf = async (req: http.IncomingMessage): Promise<string> => {
  const v = (await json(req)) as { id?: unknown };
  return typeof v?.id === 'string' ? v.id : '';
};

const ROUTES: Array<[string, RegExp, Who[], Handler]> = [
  [
    'POST',
    /^\/v1\/customers$/,
    ['admin'],
    async (s, _i, _m, r) => ({ json: await s.addCustomer(await idOf(r)) }),
  ],
  [
    'POST',
    /^\/v1\/nodes$/,
    ['admin'],
    async (s, _i, _m, r) => ({ json: await s.addNode(await idOf(r)) }),
  ],
  [
    'POST',
    /^\/v1\/programs$/,
    ['customer'],
    async (s, _i, _m, r) => ({ json: await s.putProgram(await body(r, MAX_PROGRAM)) }),
  ],
  [
    'GET',
    /^\/v1\/programs\/([0-9a-f]{64})$/,
    ['customer', 'node'],
    async (s, _i, m) => ({ bytes: await s.program(m[1]) }),
  ],
  [
    'POST',
    /^\/v1\/workloads$/,
    ['customer'],
    async (s, c, _m, r) => ({ json: await s.submit(c, await json(r)) }),
  ],
  [
    'GET',
    /^\/v1\/workloads\/([A-Za-z0-9._-]{1,64})$/,
    ['customer'],
    async (s, c, m) => ({ json: await workloadStatus(s, c, m[1]) }),
  ],
  [
    'GET',
    /^\/v1\/node$/,
    ['node'],
    async (s, n, _m, r) => {
      const v = await s.nodeView(n);
      const headers = {
        etag: `"${v.version}"`,
        'roam-pulse': v.h,
        'roam-pulse-rendezvous': s.rendezvous.join(','),
      };
      if (r.headers['if-none-match'] === headers.etag) return { status: 304, headers };
      return {
        json: { node: v.node, version: v.version, instances: v.instances, retire: v.retire },
        headers,
      };
    },
  ],
  [
    'POST',
    /^\/v1\/node\/reports$/,
    ['node'],
    async (s, n, _m, r) => {
      await applyReports(s, n, checkReports(await json(r)));
      return { json: { ok: true } };
    },
  ],
];

/** A customer's view of one workload: its current description, every version kept, and each instance's job. */
async function workloadStatus(s: ControlService, customer: string, name: string) {
  const versions = await s.sql.all(
    `SELECT version, at FROM descriptions WHERE customer = ? AND name = ? ORDER BY version`,
    [customer, name],
  );
  if (!versions.length) throw new ControlError(404, 'no-workload', `no workload ${name}`);
  const cur = await s.sql.all(
    `SELECT d.body FROM workloads w JOIN descriptions d ON d.customer = w.customer AND d.name = w.name AND d.version = w.version WHERE w.customer = ? AND w.name = ?`,
    [customer, name],
  );
  const jobs = await s.sql.all(
    `SELECT idx, node, job_id, state, spec, from_node FROM jobs WHERE customer = ? AND name = ? ORDER BY idx`,
    [customer, name],
  );
  return {
    description: JSON.parse(String(cur[0].body)) as unknown,
    versions: versions.map((v) => Number(v.version)),
    instances: jobs.map((j) => ({
      index: Number(j.idx),
      node: j.node,
      jobId: j.job_id,
      state: j.state,
      spec: Number(j.spec),
      from: j.from_node,
    })),
  };
}

export interface ControlServer {
  url: string;
  service: ControlService;
  /** Made on the first start against an empty database; null otherwise. */
  adminKey: string | null;
  close(): Promise<void>;
}

export async function startControl(
  sql: Sql,
  o: ServiceOptions & { host?: string; port?: number },
): Promise<ControlServer> {
  const svc = new ControlService(sql, o);
  const adminKey = await svc.adminKey();
  const server = http.createServer((req, res) => void handle(svc, req, res, o.log));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', resolve);
  });
  const a = server.address() as AddressInfo;
  return {
    url: `http://${a.address}:${a.port}`,
    service: svc,
    adminKey,
    close: () => new Promise((resolve) => server.close(() => void sql.close().then(resolve))),
  };
}

async function handle(
  svc: ControlService,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  log?: (m: string) => void,
) {
  let r: Reply;
  try {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const hits = ROUTES.filter(([, re]) => re.test(path));
    const route = hits.find(([method]) => method === req.method);
    if (!route)
      throw hits.length
        ? new ControlError(405, 'bad-method', `${req.method} not allowed on ${path}`)
        : new ControlError(404, 'not-found', `no route ${path}`);
    const key = /^Bearer ([0-9a-f]{64})$/.exec(req.headers.authorization ?? '')?.[1];
    let id: string | undefined;
    let why: unknown;
    for (const who of route[2]) {
      try {
        id = await svc.auth(who, key);
        break;
      } catch (e) {
        why = e;
      }
    }
    if (id === undefined) throw why;
    r = await route[3](svc, id, route[1].exec(path)!, req);
  } catch (e) {
    if (e instanceof ControlError)
      r = { status: e.status, json: { error: e.code, message: e.message } };
    else {
      log?.(`control: ${e instanceof Error ? e.stack : String(e)}`);
      const m = e instanceof Error ? e.message : String(e);
      // A broker refusal (no money, unknown node) is the customer's to see.
      r = { status: 502, json: { error: 'upstream', message: m } };
    }
  }
  const headers = {
    ...r.headers,
    'content-type': r.bytes ? 'application/wasm' : 'application/json',
  };
  res
    .writeHead(r.status ?? 200, headers)
    .end(r.bytes ?? (r.status === 304 ? undefined : JSON.stringify(r.json)));
}
