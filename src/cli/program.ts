// The `roam` program: subcommands registered, nothing run. main.ts runs it;
// docs.ts prints its reference (docs/cli.md) from the same definitions.
import { Command, Help, type Option } from 'commander';
import { COMMANDS } from './commands/index.js';
import { addExamples } from './examples.js';
import { EXIT_CODES } from '../util/errors.js';

const EXIT_HELP = `
Exit status: 0 success; 1 an internal error; ${EXIT_CODES.usage} a usage error (a bad flag or value);
${EXIT_CODES.refused} refused input (a bad file, an unknown VM, a key that does not match);
${EXIT_CODES.peer} the peer failed (destination, cstrap, broker or node); ${EXIT_CODES.timeout} a timeout.
\`roam run\` and \`roam restore\` exit with the program's own exit status once it ends.
Errors carry a stable code, printed as [code]; under --json the error is one JSON
line, {"event":"error","code":...,"message":...,"exit":N}, on stdout (on stderr
for run, restore and cstrap, whose stdout is the program's).

Sizes (256M, 1G), durations (20ms, 5s, 2m) and bandwidths (100Mbit, 12.5MB) are
written the same way in every flag; a bare number is in the unit the flag names.
\`roam help COMMAND [SUBCOMMAND]\` shows a command's help.`;

/** Options a command cannot run without say so in its help. */
function optionDescription(this: Help, option: Option): string {
  const text = Help.prototype.optionDescription.call(this, option);
  return option.mandatory ? `${text} (required)` : text;
}

/**
 * The program with the subcommand named `first` (all of them when `first` names
 * none, for help and docs). Settings made here, before any subcommand exists,
 * are inherited by every subcommand.
 */
export async function buildProgram(first?: string, o: { json?: boolean } = {}): Promise<Command> {
  const program = new Command('roam')
    .description(
      'Self-migrating WebAssembly virtual machines: run WASI programs in VMs that checkpoint and move themselves while they run',
    )
    .version('0.1.0')
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', EXIT_HELP)
    .configureHelp({ optionDescription })
    // A usage error is a CommanderError for main.ts to report (and exit 2), in every subcommand.
    .exitOverride()
    // So that `roam run prog.wasm -e x` can hand `-e x` to the program (run.ts).
    .enablePositionalOptions();
  // Under --json the refusal is one JSON line (main.ts), not commander's text.
  if (o.json) program.configureOutput({ writeErr: () => {}, outputError: () => {} });
  const one = COMMANDS.find((c) => first !== undefined && c.names.includes(first));
  // --version needs no command at all.
  const some = first === '--version' || first === '-V' ? [] : one ? [one] : COMMANDS;
  const mods = await Promise.all(some.map((c) => c.load()));
  for (const m of mods) m.register(program);
  addExamples(program);
  return program;
}
