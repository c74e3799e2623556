// The `roam` program: every subcommand registered, nothing run. main.ts runs it;
// docs.ts prints its reference (docs/cli.md) from the same definitions.
import { Command } from 'commander';
import { commands } from './commands/index.js';
import { EXIT_CODES } from '../util/errors.js';

const EXIT_HELP = `
Exit status: 0 success; 1 an internal error; ${EXIT_CODES.usage} a usage error (a bad flag or value);
${EXIT_CODES.refused} refused input (a bad file, an unknown VM, a key that does not match);
${EXIT_CODES.peer} the peer failed (destination, cstrap, broker or node); ${EXIT_CODES.timeout} a timeout.
\`roam run\` and \`roam restore\` exit with the program's own exit status once it ends.
Errors carry a stable code, printed as [code]; under --json the error is one JSON
line on stdout: {"event":"error","code":...,"message":...}.`;

export function buildProgram(): Command {
  const program = new Command('roam')
    .description(
      'Self-migrating WebAssembly virtual machines: run WASI programs in VMs that checkpoint and move themselves while they run',
    )
    .version('0.1.0')
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', EXIT_HELP)
    // So that `roam run prog.wasm -e x` can hand `-e x` to the program (run.ts).
    .enablePositionalOptions();
  for (const register of commands) register(program);
  return program;
}
