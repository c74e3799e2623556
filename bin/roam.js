#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (run `npm run build` first).
// `roam node` is the privileged node daemon: it gets its own entry so that its
// process loads nothing but src/host and src/tokens.
// (`roam node drain` is the customer-side CLI: it only signals the daemon.)
const daemon = process.argv[2] === 'node' && process.argv[3] !== 'drain';
const entry = daemon ? '../dist/src/host/main.js' : '../dist/src/cli/main.js';
if (entry.includes('host')) process.argv.splice(2, 1);
import(entry).catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    console.error(
      'roam: not built yet; run `npm run build` (or `npm install`) in the roam folder first',
    );
    process.exit(2);
  }
  throw err;
});
