// Home's HTTP API for the customer's own CLI (`roam submit`, `roam jobs`,
// `roam migrate JOB`, `roam stop JOB`): JSON over HTTP, every request
// authenticated by the bearer credential home wrote to its state file.
import http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { RoamError } from '../util/errors.js';
import type { HomeService, SubmitRequest } from './service.js';
import type { Publish } from './jobs.js';
import { DASHBOARD_HTML } from './dashboard.js';
import { tuningProblem, type Tuning } from '../guest/home-wire.js';

const MAX_BODY = 64 * 1024;

type Handler = (body: Record<string, unknown>, params: string[]) => Promise<unknown>;

export function homeApi(home: HomeService, credential: string): http.Server {
  const routes: Array<[string, RegExp, Handler]> = [
    ['GET', /^\/v1\/jobs$/, () => home.describeAll()],
    ['GET', /^\/v1\/nodes$/, () => home.nodes()],
    ['GET', /^\/v1\/moves$/, async () => home.moves],
    ['GET', /^\/v1\/jobs\/(j[0-9a-f]+)$/, async (_b, [id]) => home.describe(home.job(id))],
    ['POST', /^\/v1\/jobs$/, (b) => home.submit(submitRequest(b))],
    [
      'POST',
      /^\/v1\/jobs\/(j[0-9a-f]+)\/(migrate|fork)$/,
      (b, [id, op]) => home.migrate(id, str(b.to, 'to'), op === 'fork', tuning(b.tuning)),
    ],
    ['POST', /^\/v1\/jobs\/(j[0-9a-f]+)\/stop$/, (_b, [id]) => home.stop(id)],
  ];
  const want = Buffer.from(`Bearer ${credential}`);
  return http.createServer((req, res) => {
    const reply = (status: number, v: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(v));
    };
    // The dashboard page holds no data: its script asks the API with the credential.
    if (req.method === 'GET' && req.url === '/dashboard') {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy':
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
      });
      return void res.end(DASHBOARD_HTML);
    }
    const got = Buffer.from(req.headers.authorization ?? '');
    if (got.length !== want.length || !timingSafeEqual(got, want))
      return reply(401, { error: 'unauthorized', message: 'missing or wrong home credential' });
    const url = new URL(req.url ?? '/', 'http://home');
    for (const [method, re, handler] of routes) {
      const m = re.exec(url.pathname);
      if (!m || req.method !== method) continue;
      void readBody(req)
        .then((body) => handler(body, m.slice(1)))
        .then(
          (v) => reply(200, v),
          (err: Error) =>
            reply(err instanceof RoamError ? statusOf(err) : 500, {
              error: err instanceof RoamError ? err.code : 'internal',
              message: err.message,
            }),
        );
      return;
    }
    reply(404, { error: 'not-found', message: `${req.method} ${url.pathname}` });
  });
}

const statusOf = (e: RoamError): number =>
  e.kind === 'usage' ? 400 : e.kind === 'refused' ? 409 : e.kind === 'timeout' ? 504 : 502;

function readBody(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > MAX_BODY) {
        reject(new RoamError('too-large', 'request body over 64 KiB', { kind: 'usage' }));
        req.destroy();
      } else parts.push(d);
    });
    req.on('end', () => {
      if (!size) return resolve({});
      try {
        const v: unknown = JSON.parse(Buffer.concat(parts).toString('utf8'));
        if (typeof v !== 'object' || v === null || Array.isArray(v))
          throw new Error('not an object');
        resolve(v as Record<string, unknown>);
      } catch {
        reject(
          new RoamError('bad-json', 'the request body is not a JSON object', { kind: 'usage' }),
        );
      }
    });
  });
}

function str(v: unknown, name: string): string {
  if (typeof v !== 'string' || !v)
    throw new RoamError('bad-request', `${name} must be a non-empty string`, { kind: 'usage' });
  return v;
}

function tuning(v: unknown): Tuning | undefined {
  if (v === undefined) return undefined;
  const problem = tuningProblem(v);
  if (problem) throw new RoamError('bad-request', problem, { kind: 'usage' });
  return v as Tuning;
}

function submitRequest(b: Record<string, unknown>): SubmitRequest {
  const num = (v: unknown, name: string) => {
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
      throw new RoamError('bad-request', `${name} must be a positive integer`, { kind: 'usage' });
    return v;
  };
  const publish = Array.isArray(b.publish) ? b.publish : [];
  return {
    program: str(b.program, 'program'),
    node: str(b.node, 'node'),
    publish: publish.map((p: unknown): Publish => {
      const o = (p ?? {}) as Record<string, unknown>;
      const guest = num(o.guest, 'publish.guest');
      if (!guest || guest > 65535)
        throw new RoamError('bad-request', 'publish.guest must be a port', { kind: 'usage' });
      return { listen: str(o.listen, 'publish.listen'), guest };
    }),
    memoryMiB: num(b.memoryMiB, 'memoryMiB'),
    units: num(b.units, 'units'),
  };
}
