#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (run `npm run build` first).
// `roam node` is the privileged node daemon: it gets its own entry so that its
// process loads nothing but src/host and src/tokens. Its --help is the CLI's,
// printed from the daemon's own option definitions (src/host/node-options.ts),
// and `roam node drain` is the customer-side CLI: it only signals the daemon.
// Everything else runs the bundled CLI (scripts/bundle.js) when it is current.
import fs from 'node:fs';
import { URL } from 'node:url';

const args = process.argv.slice(2);
const daemon =
  args[0] === 'node' && args[1] !== 'drain' && !args.includes('--help') && !args.includes('-h');
const dist = new URL('../dist/src/', import.meta.url);
const mtime = (f) => fs.statSync(new URL(f, dist), { throwIfNoEntry: false })?.mtimeMs ?? 0;
// A bundle older than tsc's output would run stale code: then the unbundled CLI runs.
const bundled = mtime('bundle/main.js') >= mtime('cli/main.js') && mtime('cli/main.js') > 0;
const entry = daemon ? 'host/main.js' : bundled ? 'bundle/main.js' : 'cli/main.js';
if (daemon) process.argv.splice(2, 1);
import(new URL(entry, dist).href).catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('roam: not built yet; run `npm run build` in the roam folder first');
    process.exit(2);
  }
  throw err;
});
