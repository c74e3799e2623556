// The `roam` command line. Each subcommand lives in its own file under
// ./commands and registers itself on the program; this file only wires them up.
import { CommanderError } from 'commander';
import { buildProgram } from './program.js';
import { describeError, EXIT_CODES } from '../util/errors.js';

/** Commands whose stdout is the program's: their --json events and errors go to stderr. */
const STDOUT_IS_THE_PROGRAMS = new Set(['run', 'restore', 'cstrap']);

/** `roam help tokens buy` is `roam tokens buy --help` (commander's own help command stops at `tokens`). */
export function helpArgs(args: string[]): string[] {
  return args[0] === 'help' && args.length > 1 ? [...args.slice(1), '--help'] : args;
}

/** commander.invalidArgument -> invalid-argument: a stable code in roam's style. */
const usageCode = (code: string): string =>
  code.replace(/^commander\./, '').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export async function main(argv = process.argv): Promise<void> {
  const args = helpArgs(argv.slice(2));
  // --json before the program's own arguments (for run, after the module they are the program's).
  const cut = args[0] === 'run' ? args.findIndex((a, i) => i > 0 && a.endsWith('.wasm')) : -1;
  const json = (cut < 0 ? args : args.slice(0, cut)).includes('--json');
  const program = await buildProgram(args[0], { json });
  const report = (code: string, message: string, exit: number): void => {
    const line = `${JSON.stringify({ event: 'error', code, message, exit })}\n`;
    if (STDOUT_IS_THE_PROGRAMS.has(args[0])) process.stderr.write(line);
    else process.stdout.write(line);
  };
  try {
    await program.parseAsync([...argv.slice(0, 2), ...args]);
  } catch (err) {
    // Help and --version exit 0; any other complaint of commander's is a usage error.
    if (err instanceof CommanderError) {
      const exit = err.exitCode === 0 ? 0 : EXIT_CODES.usage;
      if (json && exit !== 0)
        report(usageCode(err.code), err.message.replace(/^error: /, ''), exit);
      process.exit(exit);
    }
    const e = describeError(err);
    if (json) report(e.code, e.message, EXIT_CODES[e.kind]);
    else process.stderr.write(`roam: ${e.message} [${e.code}]\n`);
    process.exit(EXIT_CODES[e.kind]);
  }
}

await main();
