import { RoamError } from '../../util/errors.js';
import type { Command } from 'commander';
import { defaultKeyPath, loadKey, loadOrCreateKey } from '../../format/index.js';
import {
  controlRequest,
  findVm,
  type CompressMode,
  type MigrateDone,
  type PhaseEvent,
  type RoundEvent,
} from '../../vm/control.js';
import { DEFAULT_MAX_DOWNTIME_MS } from '../../migrate/protocol.js';
import { formatRate } from '../../migrate/rate.js';
import { choice, durationMs, mib, positiveInt, rate } from '../options.js';
import { Progress } from '../progress.js';
import { HOME_FILE, homeCall, isJobId } from '../home-client.js';
import type { Tuning } from '../../guest/home-wire.js';

interface MigrateOptions {
  to?: string;
  maxDowntime: number;
  maxBandwidth?: number;
  throttle: boolean;
  compress: CompressMode;
  maxRounds: number;
  verify?: boolean;
  key?: string;
  home?: string;
  commitWindow?: number;
  serve?: string;
  pullInto?: string;
  json?: boolean;
  homeFile?: string;
}

function progress(e: RoundEvent | PhaseEvent): string {
  if (e.event === 'phase') return e.message;
  const rateText = typeof e.rate === 'number' ? ` at ${formatRate(e.rate)}` : '';
  const thr = Object.entries(e.throttled ?? {})
    .map(([pid, s]) => `pid ${pid} ${s}`)
    .join(', ');
  return (
    `round ${e.round}: sent ${e.sent} pages (${mib(e.bytes)}) in ${e.ms.toFixed(0)} ms${rateText}` +
    `, WSS ${e.wss} / buffer ${e.buffer}${e.postponed ? `, postponed ${e.postponed}` : ''}${e.compressing ? ', lz4' : ''}${thr ? `, throttled ${thr}` : ''}`
  );
}

const AFTER_FORK = `
The parent learns nothing new; a program in the child that was reading
/dev/checkpoint sees -1 (ECANCELED): "I am the copy".`;
const AFTER_MIGRATE = `
The destination runs only once the migration commits, and the source ends then;
the source unfences only once it aborts. One arbiter decides, once, and writes
the decision down before announcing it: the home given by --home (its SQLite
ledger), or else the source's own process ($ROAM_HOME/decisions/). If the
destination or the link fails before the commit, the source runs on with
nothing lost, and this command reports why.

With a job id (\`roam migrate JOB --to NODE\`) home buys the place on NODE,
picks the key and arbitrates; --max-downtime, --max-bandwidth, --no-throttle,
--compress, --max-rounds and --commit-window go on to the VM.`;

function options(cmd: Command): Command {
  return cmd
    .option('--to <host:port>', 'a cstrap waiting for the VM (`roam cstrap --listen HOST:PORT`)')
    .option(
      '--serve <host:port>',
      'instead of --to: serve the VM at http://HOST:PORT/v1/vm until a cstrap pulls it (`roam cstrap --boot-uri URL`)',
    )
    .option(
      '--pull-into <host:port>',
      "with --serve: tell the cstrap at HOST:PORT (a node's, which `roam boot` printed) to pull the VM from there, over its upload channel keyed with --key",
    )
    .option(
      '--max-downtime <ms>',
      'largest final copy, in link time (e.g. 20ms, 0.05s): sets the snapshot-buffer limit',
      durationMs,
      DEFAULT_MAX_DOWNTIME_MS,
    )
    .option('--max-bandwidth <rate>', 'pace the stream, e.g. 100Mbit, 1Gbit, 12MB', rate)
    .option(
      '--no-throttle',
      'abort instead of slowing down programs that dirty memory faster than the link',
    )
    .option(
      '--compress <mode>',
      'LZ4 pages: auto (when the measured link is slow enough to gain), always, never',
      choice(['auto', 'always', 'never'] as const),
      'auto',
    )
    .option('--max-rounds <n>', 'pre-copy rounds before throttling harder', positiveInt, 30)
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
      'the longest from the freeze to the commit (e.g. 30s), or the migration aborts',
      durationMs,
    )
    .option('--json', 'print the result as JSON (rounds in full)')
    .option(...HOME_FILE);
}

async function run(
  kind: 'migrate' | 'fork',
  ref: string,
  o: MigrateOptions,
  given: (flag: keyof MigrateOptions) => boolean,
): Promise<void> {
  const fork = kind === 'fork';
  if (!o.to === !o.serve)
    throw new RoamError('usage', 'give one of --to HOST:PORT (push) or --serve HOST:PORT (pull)', {
      kind: 'usage',
    });
  if (o.pullInto && !o.serve)
    throw new RoamError('usage', '--pull-into goes with --serve HOST:PORT', { kind: 'usage' });
  if (isJobId(ref)) return viaHome(kind, ref, o, given);
  const vm = findVm(ref);
  const key = o.key ? (await loadKey(o.key)).toString('hex') : undefined;
  const shown = new Progress();
  // A cstrap that cannot pull ends this command (the VM serves on until its own timeout).
  let refused!: (e: Error) => void;
  const failed = new Promise<never>((_, reject) => (refused = reject));
  const pullInto = async (uri: string): Promise<void> => {
    const { tellCstrap } = await import('../../vm/boot-uri.js');
    const psk = o.key ? await loadKey(o.key) : await loadOrCreateKey(defaultKeyPath());
    await tellCstrap(o.pullInto!, psk, uri);
  };
  const request = controlRequest<MigrateDone>(
    vm,
    {
      op: kind,
      to: (o.to ?? o.serve)!,
      serve: o.serve !== undefined,
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
      const uri = e.event === 'phase' && /serving the VM at (http:\S+)/.exec(e.message)?.[1];
      if (uri && o.pullInto) pullInto(uri).catch(refused);
      // Under --json the rounds and phases go to stderr as JSON lines; stdout keeps the one result.
      if (o.json)
        return void (e.event !== 'progress' && process.stderr.write(`${JSON.stringify(e)}\n`));
      if (e.event === 'progress') shown.tick(e);
      else shown.line(progress(e));
    },
  );
  const res = await Promise.race([request, failed]);
  if (o.json) {
    console.log(JSON.stringify(res));
    return;
  }
  const downtime =
    typeof res.downtimeMs === 'number' ? `${res.downtimeMs.toFixed(1)} ms` : 'not reported';
  console.log(
    `${fork ? 'forked' : 'migrated'} vm ${vm.id} to ${o.to ?? res.to}${fork ? ` (child vm ${res.vmId})` : ''}: ${res.rounds.length} rounds, ` +
      `${res.pagesSent} pages, ${mib(res.bytes)} in ${(res.totalMs / 1000).toFixed(2)} s; ` +
      `downtime ${downtime} (source freeze ${res.freezeMs.toFixed(2)} ms)${res.compressed ? ', lz4' : ''}`,
  );
}

/** `roam migrate JOB --to NODE`: home buys a place on the node and tells the VM to move there. */
async function viaHome(
  kind: 'migrate' | 'fork',
  job: string,
  o: MigrateOptions,
  given: (flag: keyof MigrateOptions) => boolean,
): Promise<void> {
  if (!o.to)
    throw new RoamError('usage', 'a job moves with --to NODE_HOST:PORT (the node daemon)', {
      kind: 'usage',
    });
  // Home chooses the key, the arbiter and the cstrap: those flags are for a VM id.
  const notForJobs = (['key', 'home', 'serve', 'pullInto', 'verify'] as const).filter(given);
  if (notForJobs.length)
    throw new RoamError(
      'usage',
      `${notForJobs.map((f) => `--${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')} cannot be used with a job id (home picks the key, the arbiter and the cstrap); use a VM id for those`,
      { kind: 'usage' },
    );
  // Only what the user gave: the VM's own defaults apply to the rest.
  const tuning: Tuning = {
    maxDowntimeMs: given('maxDowntime') ? o.maxDowntime : undefined,
    maxBandwidth: o.maxBandwidth,
    throttle: given('throttle') ? o.throttle : undefined,
    compress: given('compress') ? o.compress : undefined,
    maxRounds: given('maxRounds') ? o.maxRounds : undefined,
    windowMs: o.commitWindow === undefined ? undefined : Math.round(o.commitWindow),
  };
  const r = await homeCall<{
    downtimeMs?: number | null;
    freezeMs?: number;
    totalMs?: number;
    bytes?: number;
    child?: string;
  }>('POST', `/v1/jobs/${job}/${kind}`, { to: o.to, tuning }, o.homeFile);
  if (o.json) return void console.log(JSON.stringify(r));
  const downtime =
    typeof r.downtimeMs === 'number' ? `${r.downtimeMs.toFixed(1)} ms` : 'not reported';
  console.log(
    `${kind === 'fork' ? `forked job ${job} to ${o.to} (child job ${r.child})` : `migrated job ${job} to ${o.to}`}: ` +
      `${mib(r.bytes ?? 0)} in ${((r.totalMs ?? 0) / 1000).toFixed(2)} s; downtime ${downtime} (source freeze ${(r.freezeMs ?? 0).toFixed(2)} ms)`,
  );
}

/** `roam migrate` and `roam fork` differ only in what the source does after the destination confirms. */
function define(program: Command, kind: 'migrate' | 'fork'): void {
  const fork = kind === 'fork';
  options(
    program
      .command(kind)
      .description(
        fork
          ? 'Copy a running VM live to a cstrap: both copies run on, the child with a new VM id'
          : 'Move a running VM live to a cstrap on another host (pre-copy rounds, then a freeze of milliseconds)',
      )
      .argument(
        '<vm>',
        'VM id (or unique prefix, or pid), see `roam ps`; or a job id of your home (`roam jobs`), with --to NODE',
      ),
  )
    .addHelpText('after', fork ? AFTER_FORK : AFTER_MIGRATE)
    .action((ref: string, o: MigrateOptions, cmd: Command) =>
      run(kind, ref, o, (flag) => cmd.getOptionValueSource(flag) === 'cli'),
    );
}

export function register(program: Command): void {
  define(program, 'migrate');
  define(program, 'fork');
}
