// The local viewer server (`roam view`): serves the viewer page and the Blink
// library's modules to a browser, streams one feed's display state to it as
// server-sent events, and takes its input back. It serves files from one list of
// names only, and never runs anything the VM sent: the page checks and compiles.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InputEvent } from '../blink/display.js';
import { RoamError } from '../util/errors.js';
import type { BlinkFeed } from './feed.js';

const DIST_SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>roam view</title>
<style>body{margin:0;background:#222;color:#ccc;font:13px monospace}canvas{display:block}#status{padding:4px;white-space:pre}</style>
</head><body><canvas width="__W__" height="__H__"></canvas><div id="status">loading</div>
<script type="module">import { main } from './blink/viewer-page.js'; main();</script>
</body></html>`;

/** The browser modules: Blink's library and the one util file it imports. */
const MODULES = /^\/(blink\/[a-z-]+\.js|util\/errors\.js)$/;
const MAX_INPUT = 4096;

export interface ViewerServer {
  url: string;
  close(): Promise<void>;
}

function parseInput(body: string): InputEvent | null {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return null;
  }
  const o = v as Partial<Record<keyof InputEvent, unknown>> | null;
  if (!o || typeof o.kind !== 'number' || !Number.isInteger(o.kind) || o.kind < 1 || o.kind > 5)
    return null;
  const num = (x: unknown): number | undefined =>
    typeof x === 'number' && Number.isFinite(x) ? x : undefined;
  return { kind: o.kind, x: num(o.x), y: num(o.y), buttons: num(o.buttons), key: num(o.key) };
}

function events(feed: BlinkFeed, req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-store',
    connection: 'keep-alive',
  });
  res.write('retry: 200\n\n');
  const off = feed.subscribe((m) => res.write(`data: ${JSON.stringify(m)}\n\n`));
  req.on('close', off);
}

function handle(
  feed: BlinkFeed,
  size: [number, number],
  req: http.IncomingMessage,
  res: http.ServerResponse,
) {
  const url = new URL(req.url ?? '/', 'http://viewer');
  if (req.method === 'GET' && url.pathname === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE.replace('__W__', String(size[0])).replace('__H__', String(size[1])));
  } else if (req.method === 'GET' && MODULES.test(url.pathname)) {
    fs.readFile(path.join(DIST_SRC, url.pathname), (err, data) => {
      if (err) res.writeHead(404).end();
      else res.writeHead(200, { 'content-type': 'text/javascript' }).end(data);
    });
  } else if (req.method === 'GET' && url.pathname === '/events') {
    events(feed, req, res);
  } else if (req.method === 'POST' && url.pathname === '/input') {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
      if (body.length > MAX_INPUT) req.destroy();
    });
    req.on('end', () => {
      const e = parseInput(body);
      if (e) feed.input(e);
      res.writeHead(e ? 204 : 400).end();
    });
  } else res.writeHead(404).end();
}

/** Serves `feed` on host:port (port 0: any free one). */
export function serveViewer(
  feed: BlinkFeed,
  opts: { host?: string; port?: number; width?: number; height?: number } = {},
): Promise<ViewerServer> {
  const size: [number, number] = [opts.width ?? 512, opts.height ?? 512];
  const server = http.createServer((req, res) => handle(feed, size, req, res));
  return new Promise((resolve, reject) => {
    server.once('error', (e) =>
      reject(new RoamError('view-listen', `cannot listen for the viewer: ${e.message} (--listen)`)),
    );
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      const a = server.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      resolve({
        url: `http://${opts.host ?? '127.0.0.1'}:${port}/`,
        close: () =>
          new Promise((r) => {
            feed.close();
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
