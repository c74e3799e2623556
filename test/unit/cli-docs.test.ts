// docs/cli.md is generated from the CLI's own definitions: it must be current.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ROOT } from '../helpers.js';
import { cliReference } from '../../src/cli/docs.js';
import { buildProgram } from '../../src/cli/program.js';

test('docs/cli.md is what `npm run docs` writes now (run it after changing a command)', async () => {
  const want = cliReference(await buildProgram());
  const have = fs.readFileSync(path.join(ROOT, 'docs/cli.md'), 'utf8');
  assert.equal(have, want);
});

test('every command and subcommand has a description and --help', async () => {
  const walk = (c: Command, at: string): string[] =>
    c.commands.flatMap((s) => [
      ...(s.description() ? [] : [`${at} ${s.name()}`]),
      ...walk(s, `${at} ${s.name()}`),
    ]);
  assert.deepEqual(walk(await buildProgram(), 'roam'), []);
});

test("every command's help ends with examples, marks required options and shows defaults", async () => {
  const missing: string[] = [];
  const walk = (c: Command, at: string): void => {
    let text = '';
    c.configureOutput({ writeOut: (s) => void (text += s) });
    c.outputHelp();
    const n = (text.match(/\nExamples?:\n/g) ?? []).length;
    if (n !== 1) missing.push(`${at}: ${n} example sections`);
    for (const o of c.options)
      if (o.mandatory && !text.replace(/\s+/g, ' ').includes(`${o.description} (required)`))
        missing.push(`${at} ${o.flags}: not marked required`);
    for (const s of c.commands) walk(s, `${at} ${s.name()}`);
  };
  walk(await buildProgram(), 'roam');
  assert.deepEqual(missing, []);
});

test("roam node's help is the daemon's own option list", async () => {
  const { NODE_FLAGS } = await import('../../src/host/node-options.js');
  const daemon = Object.keys(NODE_FLAGS).map((f) => `--${f}`);
  const node = (await buildProgram('node')).commands.find((c) => c.name() === 'node');
  assert.ok(node);
  assert.deepEqual(
    node.options.map((o) => o.long),
    daemon,
  );
  assert.ok(node.options.some((o) => o.flags === '--secret-file <file>'));
  assert.ok(node.options.find((o) => o.long === '--id')?.description.endsWith('(required)'));
});

test("roam node drain is not held to the daemon's required options", async () => {
  const program = await buildProgram('node');
  await assert.rejects(
    program.parseAsync(['node', 'roam', 'node', 'drain', '--state', '/nonexistent-roam-state']),
    { code: 'no-node' },
  );
});
