// docs/cli.md, generated from the commander definitions themselves, so the
// reference cannot drift from the CLI: `npm run docs` writes it and a test
// checks that it is current.
import type { Command } from 'commander';

/** What `--help` prints for `cmd`, with its examples, at a fixed width (not the terminal's). */
function helpOf(cmd: Command): string {
  let text = '';
  cmd.configureOutput({
    writeOut: (s) => void (text += s),
    getOutHelpWidth: () => 100,
    getOutHasColors: () => false,
  });
  cmd.outputHelp();
  return text.trimEnd();
}

function section(cmd: Command, path: string[], depth: number): string[] {
  const name = [...path, cmd.name()].join(' ');
  const out = [
    `${'#'.repeat(Math.min(depth + 2, 4))} \`${name}\``,
    '',
    '```',
    helpOf(cmd),
    '```',
    '',
  ];
  for (const sub of cmd.commands) out.push(...section(sub, [...path, cmd.name()], depth + 1));
  return out;
}

export function cliReference(program: Command): string {
  return [
    '# roam command reference',
    '',
    'Generated from the CLI definitions by `npm run docs`; a test fails when it is out of date.',
    'Every command prints its own part with `--help`.',
    '',
    ...section(program, [], 0),
  ].join('\n');
}
