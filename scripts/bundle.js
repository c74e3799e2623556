// `npm run build`, after tsc: the CLI as a few bundled ES modules in dist/src/bundle
// (esbuild), so that `roam run` loads a handful of files instead of ~80: Node 20
// pays for each ES module it resolves and links, and that was most of roam's
// start-up over node:wasi (issue #12; npm run bench:startup). Each command stays
// its own chunk, loaded only when it runs; packages stay in node_modules. The
// bundle sits at the same depth as dist/src/cli, so paths the code derives from
// import.meta.url (bin/roam.js, dist/src, the roam folder) are the same.
// bin/roam.js uses it only when it is newer than tsc's output, and falls back
// to dist/src/cli/main.js when it is absent (esbuild not installed).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist/src/bundle');
let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.error('bundle: esbuild is not installed; roam runs unbundled (slower start-up)');
  process.exit(0);
}
fs.rmSync(outdir, { recursive: true, force: true });
await esbuild.build({
  entryPoints: [path.join(root, 'dist/src/cli/main.js')],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  entryNames: '[name]',
  chunkNames: 'chunk-[hash]',
  logLevel: 'warning',
});
