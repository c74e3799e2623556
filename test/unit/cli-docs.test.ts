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
