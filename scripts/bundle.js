// `npm run build`, after tsc: the CLI as a few bundled ES modules in dist/src/bundle
// (esbuild), so that `roam run` loads a handful of files instead of ~80: Node 20
// pays for each ES module it resolves and links, and that was most of roam's
// start-up over node:wasi (issue #12; npm run bench:startup). Each command stays
// its own chunk, loaded only when it runs. The
// bundle sits at the same depth as dist/src/cli, so paths the code derives from
// import.meta.url (bin/roam.js, dist/src, the roam folder) are the same.
// bin/roam.js uses it only when it is newer than tsc's output, and falls back
// to dist/src/cli/main.js when it is absent (esbuild not installed).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist/src/bundle');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
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
  // Packages stay in node_modules (native addons, binaryen's size), except commander,
  // which every command loads: inlined, it costs no package lookup and no CommonJS loader.
  external: Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).filter(
    (p) => p !== 'commander',
  ),
  entryNames: '[name]',
  chunkNames: 'chunk-[hash]',
  // commander is CommonJS: its require('node:events') needs a require in each chunk.
  banner: {
    js: "import { createRequire as __roamRequire } from 'node:module'; const require = __roamRequire(import.meta.url);",
  },
  // Less source for V8 to parse at each start (names are kept: stack traces stay readable).
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  logLevel: 'warning',
});
