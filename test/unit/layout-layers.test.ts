// The folder tree is layered: each component imports only from components on
// lower floors (or from itself), so there are no cycles between folders and no
// upward imports. A new folder must be given its floor here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers.js';

/** Floor of each folder under src/: an import must go to a strictly lower floor, or stay in its folder. */
const FLOORS: Record<string, number> = {
  util: 0,
  memory: 1,
  tokens: 1,
  // Blink's BlinkGL, checker, JIT and display: a pure library (it runs in the viewer's
  // browser too), importing only util's errors.
  blink: 1,
  // Pulse is a library of datagrams and sockets, on util alone: control and agent use it.
  pulse: 1,
  wasm: 2,
  format: 2,
  host: 2,
  broker: 2,
  // The control service buys boot tokens with the broker's client and announces changes with Pulse.
  control: 3,
  guest: 3,
  checkpoint: 4,
  migrate: 5,
  vm: 6,
  // home is a separate process that talks to VMs over the network (the migration
  // channel and arbiter protocol of src/migrate); it must not load the VM runtime.
  home: 6,
  // The local viewer server (`roam view`): feeds a VM's display state to a browser;
  // it reaches VMs through src/vm's control socket, and the CLI starts it.
  viewer: 7,
  // The agent drives a node: its daemon (host), the VMs it uploads and migrates (vm), the
  // control service's client (control) and Pulse; only the CLI is above it.
  agent: 7,
  cli: 8,
};

const SRC = path.join(ROOT, 'src');
const tsFiles = (dir: string): string[] =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });

/** Every relative import (static, dynamic, or re-export) of a source file, resolved to a path under src/. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.\.?\/[^']+)'/g)].map((m) => m[1]);
  return specs.map((s) => path.relative(SRC, path.resolve(path.dirname(file), s)));
}

const folderOf = (rel: string): string => rel.split(path.sep)[0];

test('every folder under src/ has a floor', () => {
  const folders = fs
    .readdirSync(SRC, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
  for (const f of folders)
    assert.ok(f in FLOORS, `src/${f}/ has no floor in test/layout-layers.test.ts`);
});

test('no folder imports from its own floor or above (no upward imports, no cycles)', () => {
  const bad: string[] = [];
  for (const file of tsFiles(SRC)) {
    const from = folderOf(path.relative(SRC, file));
    for (const target of importsOf(file)) {
      const to = folderOf(target);
      if (to === from) continue;
      if (!(to in FLOORS) || FLOORS[to] >= FLOORS[from])
        bad.push(`${path.relative(ROOT, file)} imports src/${target}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('the checker sees an upward import', () => {
  // guest (floor 3) importing the page cleaner (floor 4) would be one.
  assert.ok(FLOORS.checkpoint >= FLOORS.guest);
  assert.equal(folderOf(path.join('checkpoint', 'cleaner.js')), 'checkpoint');
});
