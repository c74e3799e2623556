import type { Command } from 'commander';
import { loadKey } from '../../format/index.js';
import { controlRequest, findVm, type ControlEvent } from '../../vm/control.js';
import { DEFAULT_MAX_DOWNTIME_MS } from '../../migrate/protocol.js';
import { formatRate, parseRate } from '../../migrate/rate.js';

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

function progress(e: ControlEvent): string {
  const rate = typeof e.rate === 'number' ? ` at ${formatRate(e.rate)}` : '';
  const thr = Object.entries((e.throttled as Record<string, string>) ?? {})
    .map(([pid, s]) => `pid ${pid} ${s}`)
    .join(', ');
  return (
    `round ${e.round}: sent ${e.sent} pages (${mib(e.bytes as number)}) in ${(e.ms as number).toFixed(0)} ms${rate}` +
    `, WSS ${e.wss} / buffer ${e.buffer}${e.postponed ? `, postponed ${e.postponed}` : ''}${e.compressing ? ', lz4' : ''}${thr ? `, throttled ${thr}` : ''}`
  );
}

/** `roam migrate` and `roam fork` differ only in what the source does after the destination confirms. */
function define(program: Command, kind: 'migrate' | 'fork'): void {
  const fork = kind === 'fork';
  program
    .command(kind)
    .description(
      fork
        ? 'Copy a running VM live to a cstrap: both copies run on, the child with a new VM id'
        : 'Move a running VM live to a cstrap on another host (pre-copy rounds, then a freeze of milliseconds)',
    )
    .argument('<vm>', 'VM id (or unique prefix, or pid), see `roam ps`')
    .requiredOption(
      '--to <host:port>',
      'a cstrap waiting for the VM (`roam cstrap --listen HOST:PORT`)',
    )
    .option(
      '--max-downtime <ms>',
      'largest final copy, in link time: sets the snapshot-buffer limit',
      (v) => Number(v),
      DEFAULT_MAX_DOWNTIME_MS,
    )
    .option('--max-bandwidth <rate>', 'pace the stream, e.g. 100Mbit, 1Gbit, 12MB', parseRate)
    .option(
      '--no-throttle',
      'abort instead of slowing down programs that dirty memory faster than the link',
    )
    .option(
      '--compress <mode>',
      'LZ4 pages: auto (when the measured link is slow enough to gain), always, never',
      'auto',
    )
    .option('--max-rounds <n>', 'pre-copy rounds before throttling harder', (v) => Number(v), 30)
    .option(
      '--verify',
      'at the freeze, hash all memory and check the pre-copied pages against it (slower freeze; for testing)',
    )
    .option(
      '--key <file>',
      'key shared with the cstrap (default: the VM uses $ROAM_HOME/checkpoint.key)',
    )
    .option(
      '--home <host:port>',
      "the home that arbitrates the commit (`roam home`); without one the VM's own process decides",
    )
    .option(
      '--commit-window <ms>',
      'the longest the migration may take from the freeze to its commit, or it aborts',
      (v) => Number(v),
    )
    .option('--json', 'print the result as JSON (rounds in full)')
    .addHelpText(
      'after',
      fork
        ? `
The parent learns nothing new; a program in the child that was reading
/dev/checkpoint sees -1 (ECANCELED): "I am the copy".`
        : `
The destination runs only once the migration commits, and the source ends then;
the source unfences only once it aborts. One arbiter decides, once, and writes
the decision down before announcing it: the home given by --home (its SQLite
ledger), or else the source's own process ($ROAM_HOME/decisions/). If the
destination or the link fails before the commit, the source runs on with
nothing lost, and this command reports why.`,
    )
    .action(async (ref: string, o) => {
      if (!['auto', 'always', 'never'].includes(o.compress))
        throw new Error(`--compress must be auto, always or never, not "${o.compress}"`);
      if (o.commitWindow !== undefined && !(o.commitWindow >= 100))
        throw new Error('--commit-window must be at least 100 milliseconds');
      if (!(o.maxDowntime > 0))
        throw new Error('--max-downtime must be a positive number of milliseconds');
      const vm = findVm(ref);
      const key = o.key ? (await loadKey(o.key)).toString('hex') : undefined;
      const res = await controlRequest(
        vm,
        {
          op: kind,
          to: o.to,
          maxDowntimeMs: o.maxDowntime,
          maxBandwidth: o.maxBandwidth,
          throttle: o.throttle,
          compress: o.compress,
          maxRounds: o.maxRounds,
          key,
          verify: !!o.verify,
          home: o.home,
          windowMs: o.commitWindow,
        },
        (e) => {
          if (o.json) return;
          if (e.event === 'round') process.stderr.write(progress(e) + '\n');
          else if (e.event === 'phase') process.stderr.write(`${e.message}\n`);
        },
      );
      if (o.json) {
        console.log(JSON.stringify(res));
        return;
      }
      const downtime =
        typeof res.downtimeMs === 'number' ? `${res.downtimeMs.toFixed(1)} ms` : 'not reported';
      console.log(
        `${fork ? 'forked' : 'migrated'} vm ${vm.id} to ${o.to}${fork ? ` (child vm ${res.vmId})` : ''}: ${(res.rounds as unknown[]).length} rounds, ` +
          `${res.pagesSent} pages, ${mib(res.bytes as number)} in ${((res.totalMs as number) / 1000).toFixed(2)} s; ` +
          `downtime ${downtime} (source freeze ${(res.freezeMs as number).toFixed(2)} ms)${res.compressed ? ', lz4' : ''}`,
      );
    });
}

export function register(program: Command): void {
  define(program, 'migrate');
  define(program, 'fork');
}
