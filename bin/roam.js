#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (run `npm run build` first).
// `roam node` is the privileged node daemon: it gets its own entry so that its
// process loads nothing but src/host and src/tokens. Its --help is the CLI's,
// printed from the daemon's own option definitions (src/host/node-options.ts).
const args = process.argv.slice(2);
const daemon = args[0] === 'node' && !args.includes('--help') && !args.includes('-h');
const entry = daemon ? '../dist/src/host/main.js' : '../dist/src/cli/main.js';
if (daemon) process.argv.splice(2, 1);
import(entry).catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('roam: not built yet; run `npm run build` in the roam folder first');
    process.exit(2);
  }
  throw err;
});
