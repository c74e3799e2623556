// The `roam` command line. Each subcommand lives in its own file under
// ./commands and registers itself on the program; this file only wires them up.
import { Command, CommanderError } from 'commander';
import { commands } from './commands/index.js';
import { describeError } from '../util/errors.js';

export function buildProgram(): Command {
  const program = new Command('roam')
    .description(
      'Self-migrating WebAssembly virtual machines: run WASI programs in VMs that checkpoint and move themselves while they run',
    )
    .version('0.1.0')
    .showHelpAfterError('(add --help for usage)')
    // So that `roam run prog.wasm -e x` can hand `-e x` to the program (run.ts).
    .enablePositionalOptions();
  for (const register of commands) register(program);
  return program;
}

export async function main(argv = process.argv): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    const e = describeError(err);
    // Under --json a script reads the refusal as it reads results: one JSON line on stdout.
    if (argv.includes('--json'))
      process.stdout.write(
        `${JSON.stringify({ event: 'error', code: e.code, message: e.message })}\n`,
      );
    else process.stderr.write(`roam: ${e.message} [${e.code}]\n`);
    process.exit(1);
  }
}

await main();
