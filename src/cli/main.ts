// The `roam` command line. Each subcommand lives in its own file under
// ./commands and registers itself on the program; this file only wires them up.
import { CommanderError } from 'commander';
import { buildProgram } from './program.js';
import { describeError, EXIT_CODES } from '../util/errors.js';

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
