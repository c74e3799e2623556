// `roam control`: run the job-control service (thesis 8.3.2), and the customer's
// and administrator's commands against a running one.
import type { Command } from 'commander';
import fs from 'node:fs';
import { startControl } from '../../control/server.js';
import { ControlClient } from '../../control/client.js';
import { openStore } from '../../control/open.js';
import { BrokerClient, readKeyFile } from '../../broker/client.js';
import { parseServers } from '../../pulse/client.js';
import { parseHostPort } from '../../util/address.js';
import { RoamError } from '../../util/errors.js';
import { emit, httpUrl, integer, JSON_FLAG, seconds } from '../options.js';
import { loaderHash } from '../../migrate/loader.js';

interface ServeOpts {
  listen: string;
  db?: string;
  broker?: string;
  brokerKey?: string;
  rendezvous: string[];
  adminKeyOut?: string;
  units: number;
  lifetime: number;
  json?: boolean;
}

export function readKey(file: string, flag = '--key'): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new RoamError('bad-key', `${flag} ${file}: ${(e as Error).message}`, { kind: 'usage' });
  }
  if (!/^[0-9a-f]{64}$/.test(text))
    throw new RoamError('bad-key', `${flag} ${file}: expected 64 hex digits`, { kind: 'usage' });
  return text;
}

function writeKey(file: string | undefined, key: string, what: string, json?: boolean): void {
  if (file) fs.writeFileSync(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
  if (json)
    process.stdout.write(
      `${JSON.stringify({ event: 'enrolled', who: what, ...(file ? { keyFile: file } : { key }) })}\n`,
    );
  else if (file) process.stderr.write(`${what} key written to ${file}\n`);
  else process.stdout.write(`${key}\n`);
}

export function register(program: Command): void {
  const control = program
    .command('control')
    .description(
      'run the job-control service (HTTP; workload descriptions and jobs in SQLite or PostgreSQL), or talk to one',
    )
    .option('--listen <addr>', 'HOST:PORT to listen on (port 0 picks a free one)', '127.0.0.1:7500')
    .option('--db <file|url>', 'SQLite file, or postgres://... shared by several control services')
    .option('--broker <url>', 'the token broker the service buys boot tokens from', httpUrl)
    .option(
      '--broker-key <file>',
      'the broker customer credential tokens are bought with (roam broker add-customer -o)',
    )
    .option(
      '--rendezvous <list>',
      'Pulse rendezvous servers, comma-separated HOST:PORT',
      parseServers,
      [],
    )
    .option(
      '--admin-key-out <file>',
      'on first start, write the admin key here (default: print it)',
    )
    .option('--units <n>', 'units bought with each boot token', integer(1), 1000)
    .option(
      '--lifetime <duration>',
      "lifetime of each job's token on its node (e.g. 1d; a bare number is seconds)",
      seconds(),
      86_400,
    )
    .option('--json', 'print the listening address as JSON')
    .action(async (o: ServeOpts) => {
      if (!o.db)
        throw new RoamError('usage', '--db FILE (or postgres://...) is required', {
          kind: 'usage',
        });
      if (!o.broker)
        throw new RoamError(
          'usage',
          '--broker URL is required: the service buys boot tokens there',
          { kind: 'usage' },
        );
      const { host, port } = parseHostPort(o.listen, { allowPortZero: true });
      const c = await startControl(await openStore(o.db), {
        host,
        port,
        broker: new BrokerClient(
          o.broker,
          o.brokerKey ? readKeyFile(o.brokerKey, '--broker-key') : undefined,
        ),
        rendezvous: o.rendezvous,
        units: o.units,
        lifetimeS: o.lifetime,
        loaderSha256: loaderHash(),
        log: (m) => process.stderr.write(`${m}\n`),
      });
      if (c.adminKey) writeKey(o.adminKeyOut, c.adminKey, 'admin');
      process.stdout.write(
        o.json
          ? `${JSON.stringify({ event: 'listening', url: c.url })}\n`
          : `control listening on ${c.url}\n`,
      );
      const stop = () => void c.close().then(() => process.exit(0));
      process.once('SIGINT', stop).once('SIGTERM', stop);
    });
  defineAdmin(control);
  defineCustomer(control);
}

const client = (o: { control: string; key: string }) =>
  new ControlClient(o.control, readKey(o.key));

function defineAdmin(control: Command): void {
  for (const kind of ['customer', 'node'] as const)
    control
      .command(`add-${kind}`)
      .description(`enrol a ${kind}; its key is shown (or written) only this once`)
      .requiredOption('--control <url>', 'control service URL', httpUrl)
      .requiredOption('--key <file>', 'the admin key file')
      .requiredOption('--id <id>', `${kind} id (1-64 of A-Z a-z 0-9 . _ -)`)
      .option('-o, --key-out <file>', 'write the key to this file (mode 0600)')
      .option(...JSON_FLAG)
      .action(
        async (o: {
          control: string;
          key: string;
          id: string;
          keyOut?: string;
          json?: boolean;
        }) => {
          const c = client(o);
          const r = kind === 'customer' ? await c.addCustomer(o.id) : await c.addNode(o.id);
          writeKey(o.keyOut, r.key, `${kind} ${r.id}`, o.json);
        },
      );
}

function defineCustomer(control: Command): void {
  control
    .command('upload')
    .description('upload a program (.wasm); prints its SHA-256, which descriptions name it by')
    .argument('<program>', 'a WASI module')
    .requiredOption('--control <url>', 'control service URL', httpUrl)
    .requiredOption('--key <file>', 'your customer key file')
    .option(...JSON_FLAG)
    .action(async (file: string, o: { control: string; key: string; json?: boolean }) => {
      const r = await client(o).putProgram(fs.readFileSync(file));
      emit(o.json, { event: 'uploaded', sha256: r.sha256 }, r.sha256);
    });
  control
    .command('submit')
    .description(
      'post a workload description (JSON); a new one for a name replaces the old, which is kept',
    )
    .argument('<file>', 'the description, JSON (see roam control submit --help); - for stdin')
    .requiredOption('--control <url>', 'control service URL', httpUrl)
    .requiredOption('--key <file>', 'your customer key file')
    .addHelpText(
      'after',
      `
A description:
  {"name": "web", "programs": [{"sha256": "<roam control upload>", "args": []}],
   "instances": 8, "memoryMiB": 64, "ports": ["127.0.0.1:7000"],
   "placement": {"nodes": ["n1", "n2", "n3"]}, "version": 1}
Instance i listens on PORT + i. Changing "placement" moves instances by live
migration; changing programs, memory or ports replaces them.`,
    )
    .action(async (file: string, o: { control: string; key: string }) => {
      const text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new RoamError('bad-json', `${file} is not JSON`, { kind: 'usage' });
      }
      const r = await client(o).submit(body);
      process.stdout.write(`${JSON.stringify({ event: 'submitted', ...r })}\n`);
    });
  control
    .command('status')
    .description(
      "a workload's description, its versions, and each instance's node and state (JSON)",
    )
    .argument('<name>', 'workload name')
    .requiredOption('--control <url>', 'control service URL', httpUrl)
    .requiredOption('--key <file>', 'your customer key file')
    .action(async (name: string, o: { control: string; key: string }) => {
      process.stdout.write(`${JSON.stringify(await client(o).workload(name))}\n`);
    });
}
