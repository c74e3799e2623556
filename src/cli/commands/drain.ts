// `roam node drain`: empty a node by live migration. The daemon's SIGTERM path
// does it (each VM gets a notice with --grace; one with a home asks it for
// another node and migrates there, clients connected; one without suspends to
// disk); this command finds the daemon, signals it, and reports until it exits.
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { RoamError } from '../../util/errors.js';
import { positiveInt } from '../options.js';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** VM folders under the node's state that still hold a running VM's control socket. */
function vmsLeft(state: string): number {
  let n = 0;
  for (const d of fs.readdirSync(state, { withFileTypes: true }))
    if (d.isDirectory() && fs.existsSync(path.join(state, d.name, 'vms'))) {
      const reg = fs.readdirSync(path.join(state, d.name, 'vms'));
      if (reg.some((f) => f.endsWith('.json'))) n++;
    }
  return n;
}

async function drain(o: { state: string; timeout: number; json?: boolean }): Promise<void> {
  const file = path.join(o.state, 'node.pid');
  let pid: number;
  try {
    pid = Number(fs.readFileSync(file, 'utf8').trim());
  } catch (err) {
    throw new RoamError(
      'no-node',
      `--state ${o.state}: no node.pid (${(err as NodeJS.ErrnoException).code}); is a node daemon running with --state ${o.state}?`,
      { kind: 'usage' },
    );
  }
  if (!Number.isSafeInteger(pid) || pid < 2 || !alive(pid))
    throw new RoamError('no-node', `the node daemon of ${o.state} (pid ${pid}) is not running`, {
      kind: 'refused',
    });
  const t0 = Date.now();
  process.kill(pid, 'SIGTERM');
  let last = -1;
  while (alive(pid)) {
    if (Date.now() - t0 > o.timeout * 1000)
      throw new RoamError(
        'timeout',
        `the node (pid ${pid}) is still draining after ${o.timeout} s`,
        {
          kind: 'timeout',
        },
      );
    const left = vmsLeft(o.state);
    if (left !== last && !o.json)
      process.stderr.write(`roam: draining: ${left} VM(s) on the node\n`);
    last = left;
    await new Promise((r) => setTimeout(r, 200));
  }
  const out = { state: o.state, pid, drainedMs: Date.now() - t0 };
  if (o.json) console.log(JSON.stringify(out));
  else console.log(`node drained and stopped in ${(out.drainedMs / 1000).toFixed(1)} s`);
}

export function defineDrain(node: Command): void {
  node
    .command('drain')
    .description(
      'Empty a node: each VM with a home migrates live to another node, the others suspend; then the daemon exits',
    )
    .helpOption('-h, --help', 'display help for command') // `roam node` itself leaves help to the daemon
    .requiredOption('--state <dir>', "the node's --state folder")
    .option('--timeout <s>', 'give up waiting after this long', positiveInt, 120)
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
The same happens when the daemon gets SIGTERM. Each VM gets the node's --grace
to leave; a VM asks its home for a destination within half of it.

Example:
  roam node drain --state /tmp/roam-node`,
    )
    .action(drain);
}
