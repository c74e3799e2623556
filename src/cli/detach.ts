// `roam run --detach`: the VM runs in a process of its own, in the background,
// its output in $ROAM_HOME/logs/VM.log (`roam logs VM`); this command prints the
// VM id once the VM runs, so scripts can go on with `roam checkpoint "$VM"`.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { roamHome } from '../util/home.js';
import { RoamError } from '../util/errors.js';

const ROAM = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/roam.js');
export const logDir = (): string => path.join(roamHome(), 'logs');

/** The log of a VM started with --detach (by id or unique prefix; it stays after the VM ends). */
export function logOf(ref: string): string {
  const names = fs.existsSync(logDir()) ? fs.readdirSync(logDir()) : [];
  const hits = names.filter((n) => n.endsWith('.log') && n.startsWith(ref));
  if (hits.length === 1) return path.join(logDir(), hits[0]);
  if (hits.length > 1)
    throw new RoamError(
      'ambiguous-vm',
      `"${ref}" matches ${hits.length} logs; give more of the id`,
    );
  throw new RoamError(
    'no-log',
    `no log for VM "${ref}": only VMs started with \`roam run --detach\` keep one (a foreground VM's output is on its terminal)`,
  );
}

/**
 * Start `roam run ARGS` (without --detach) in the background and resolve with the
 * VM id once it runs. If it ends first, its output is the reason.
 */
export async function detach(args: string[], timeoutMs = 600_000): Promise<string> {
  fs.mkdirSync(logDir(), { recursive: true, mode: 0o700 });
  const pending = path.join(logDir(), `.starting-${process.pid}.log`);
  const fd = fs.openSync(pending, 'w', 0o600);
  const child = spawn(process.execPath, [ROAM, 'run', ...args], {
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  fs.closeSync(fd);
  const ended: { code: number | null } = { code: null };
  child.on('exit', (code, sig) => (ended.code = code ?? (sig ? 128 : 1)));
  const t0 = Date.now();
  for (;;) {
    const text = fs.readFileSync(pending, 'utf8');
    const m = /roam: vm ([0-9a-f]+) running/.exec(text);
    if (m) {
      // The log keeps its name from now on: the running VM writes to the same file.
      fs.renameSync(pending, path.join(logDir(), `${m[1]}.log`));
      child.unref();
      return m[1];
    }
    if (ended.code !== null) {
      fs.rmSync(pending, { force: true });
      throw new RoamError(
        'vm-ended',
        `the VM ended before it ran (exit ${ended.code}):\n${text.trimEnd()}`,
      );
    }
    if (Date.now() - t0 > timeoutMs) {
      child.kill('SIGKILL');
      throw new RoamError('timeout', `the VM did not start within ${timeoutMs / 1000} s`, {
        kind: 'timeout',
      });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** argv for the background `roam run`: this command's, less the --detach before the program. */
export function withoutDetach(argv: string[], program: string): string[] {
  const at = argv.indexOf(program);
  // --json too: this process reports in JSON; the background one writes the plain line detach() reads.
  const before = argv.slice(0, at).filter((a) => a !== '--detach' && a !== '-d' && a !== '--json');
  return [...before, ...argv.slice(at)];
}
