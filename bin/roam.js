#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (run `npm run build` first).
import('../dist/src/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('roam: not built yet; run `npm run build` (or `npm install`) in the roam folder first');
    process.exit(2);
  }
  throw err;
});
