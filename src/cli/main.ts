// The `roam` command line. Each subcommand lives in its own file under
// ./commands and registers itself on the program; this file only wires them up.
import { Command, CommanderError } from 'commander';
import { commands } from './commands/index.js';
import { describeError, EXIT_CODES } from '../util/errors.js';

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
    .addHelpText('after', EXIT_HELP);
  for (const register of commands) register(program);
  return program;
}

export async function main(argv = process.argv): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    // Help and --version exit 0; any other complaint of commander's is a usage error.
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT_CODES.usage);
    const e = describeError(err);
    // Under --json a script reads the refusal as it reads results: one JSON line on stdout.
    if (argv.includes('--json'))
      process.stdout.write(
        `${JSON.stringify({ event: 'error', code: e.code, message: e.message })}\n`,
      );
    else process.stderr.write(`roam: ${e.message} [${e.code}]\n`);
    process.exit(EXIT_CODES[e.kind]);
  }
}

await main();
