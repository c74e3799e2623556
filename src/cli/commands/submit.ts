// `roam submit`, `roam jobs`: a customer's jobs, through `roam home`. Home buys
// the token and boots an empty VM on the node; this command builds the VM here
// (its program prepared, its published ports as `home:PORT` listeners, its
// session with home configured) and uploads it into that cstrap.
import path from 'node:path';
import type { Command } from 'commander';
import { bootVm, loadProgram } from '../../vm/create.js';
import type { MigrateResult } from '../../migrate/source.js';
import { uploadVm } from '../../vm/upload.js';
import { RoamError } from '../../util/errors.js';
import { collect, parseEnv, positiveInt, positiveMiB } from '../options.js';
import { HOME_FILE, homeCall } from '../home-client.js';
import type { Submitted } from '../../home/service.js';

interface SubmitFlags {
  node: string;
  publish: string[];
  env: string[];
  memory?: number;
  units?: number;
  homeFile?: string;
  json?: boolean;
  quiet?: boolean;
}

/** `--publish [HOST:]PORT:GUEST`: home listens on HOST:PORT (default 127.0.0.1), the guest on `home:GUEST`. */
export function parsePublish(spec: string): { listen: string; guest: number } {
  const m = /^(?:(.+):)?(\d{1,5}):(\d{1,5})$/.exec(spec);
  const port = m ? Number(m[2]) : NaN;
  const guest = m ? Number(m[3]) : NaN;
  if (!m || port > 65535 || guest < 1 || guest > 65535)
    throw new RoamError(
      'bad-publish',
      `bad --publish "${spec}": expected [HOST:]PORT:GUEST, e.g. 8080:80`,
      {
        kind: 'usage',
      },
    );
  return { listen: `${m[1] ?? '127.0.0.1'}:${port}`, guest };
}

async function submit(prog: string, args: string[], o: SubmitFlags): Promise<void> {
  const publish = o.publish.map(parsePublish);
  const say = (m: string) => !o.json && !o.quiet && process.stderr.write(`roam: ${m}\n`);
  // A program that cannot be read or prepared fails here, before anything is bought.
  await loadProgram(prog, say);
  const s = await homeCall<Submitted>(
    'POST',
    '/v1/jobs',
    { program: path.basename(prog), node: o.node, publish, memoryMiB: o.memory, units: o.units },
    o.homeFile,
  );
  say(`job ${s.job}: an empty VM waits at ${s.cstrap}; building and uploading ${prog}`);
  const guests = publish.map((p) => p.guest);
  const res = await upload(prog, args, o, guests, s, say).catch(async (err: Error) => {
    // Nothing runs: the job is closed and what was bought is refunded.
    await homeCall('POST', `/v1/jobs/${s.job}/stop`, {}, o.homeFile).catch(() => undefined);
    throw err;
  });
  const out = { job: s.job, node: o.node, cstrap: s.cstrap, vm: res.vmId, published: s.published };
  if (o.json) console.log(JSON.stringify(out));
  else if (o.quiet) console.log(s.job);
  else
    console.log(
      `job ${s.job} runs ${prog} on ${o.node} (vm ${res.vmId})${s.published.length ? `; published ${s.published.join(', ')}` : ''}`,
    );
  process.exit(0);
}

/** Build the VM here, its listeners `home:PORT` and its session configured, and send it into the cstrap. */
async function upload(
  prog: string,
  args: string[],
  o: SubmitFlags,
  guests: number[],
  s: Submitted,
  say: (m: string) => void,
): Promise<MigrateResult> {
  const kernel = await bootVm(prog, args, {
    tcplisten: guests.map((g) => `home:${g}`),
    env: o.env.map(parseEnv),
    memoryMiB: o.memory,
    upload: true,
    home: { home: s.session.home, job: s.job, key: s.session.key },
    onProgress: say,
  });
  kernel.relay!.token = s.session.token;
  return uploadVm(kernel, s.cstrap, { psk: Buffer.from(s.key, 'hex'), onPhase: say });
}

interface JobView {
  job: string;
  program: string;
  state: string;
  nodeId: string;
  node: string;
  vm: string;
  published: string[];
  attached: boolean;
  clients: number;
  migrations: number;
}

export function register(program: Command): void {
  program
    .command('submit')
    .description(
      'Run a WASI program as a job of your home: home boots a VM on the node, this uploads it',
    )
    .argument('<program>', 'a WASI preview1 module (.wasm)')
    .argument('[args...]', "the program's arguments (everything after the module)")
    .passThroughOptions()
    .requiredOption('--node <host:port>', "the node daemon's UDP address (roam node prints it)")
    .option(
      '--publish <[host:]port:guest>',
      'home listens on HOST:PORT and relays each client to the guest listener home:GUEST (repeatable)',
      collect,
      [],
    )
    .option('--env <K=V>', 'an environment variable for the program (repeatable)', collect, [])
    .option('--memory <MiB>', 'memory limit (also what the token buys)', positiveMiB)
    .option('--units <n>', 'units to buy for the job (default 10000)', positiveInt)
    .option(...HOME_FILE)
    .option('--json', 'print the job as JSON')
    .option('--quiet', 'print only the job id (JOB=$(roam submit --quiet ...))')
    .addHelpText(
      'after',
      `
The program finds each published port as a preopened listener (fd after the
preopens, as --tcplisten gives one) and accepts clients on it as usual; they are
relayed by home, so they stay connected when the VM migrates.

Example:
  roam submit --node 127.0.0.1:7501 --publish 9000:7000 examples/game-server.wasm`,
    )
    .action((prog: string, args: string[], o: SubmitFlags) => submit(prog, args, o));

  program
    .command('jobs')
    .description("List your home's jobs: where each runs, its published ports, its clients")
    .option(...HOME_FILE)
    .option('--json', 'one JSON object per job, one per line')
    .action(async (o: { homeFile?: string; json?: boolean }) => {
      const jobs = await homeCall<JobView[]>('GET', '/v1/jobs', undefined, o.homeFile);
      for (const j of jobs) {
        if (o.json) console.log(JSON.stringify(j));
        else
          console.log(
            `${j.job}  ${j.state.padEnd(9)} ${j.program}  on ${j.nodeId} (${j.node})  vm ${j.vm}  ` +
              `${j.attached ? 'session up' : 'no session'}, ${j.clients} client(s), ${j.migrations} migration(s)` +
              (j.published.length ? `  ${j.published.join(' ')}` : ''),
          );
      }
      if (!jobs.length && !o.json) console.log('no jobs (roam submit starts one)');
    });
}
