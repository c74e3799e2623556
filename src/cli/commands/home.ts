import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { HomeService } from '../../home/service.js';
import { homeApi } from '../../home/api.js';
import { HomeLedger } from '../../home/ledger.js';
import { loadKey, defaultKeyPath, loadOrCreateKey } from '../../format/index.js';
import { parseHostPort } from '../../util/address.js';
import { roamHome } from '../../util/home.js';
import { brokerClient } from './broker.js';
import { collect, positiveInt } from '../options.js';

interface HomeFlags {
  listen: string;
  api: string;
  db: string;
  key?: string;
  broker?: string;
  customerKey?: string;
  node: string[];
  state?: string;
  topupUnits?: number;
  advertise?: string;
}

/** Where `roam home` writes its API address and credential, and where the CLI finds them. */
export const homeStateFile = (): string => path.join(roamHome(), 'home.json');

async function serveHome(o: HomeFlags): Promise<void> {
  const say = (m: string) => process.stderr.write(`roam: home: ${m}\n`);
  const home = new HomeService({
    db: o.db,
    broker: o.broker ? brokerClient({ broker: o.broker, customerKey: o.customerKey }) : undefined,
    nodes: o.node,
    log: say,
    topupUnits: o.topupUnits,
    advertise: o.advertise,
  });
  // Migrations ordered by hand (`roam migrate VM --home`) carry this key.
  const psk = o.key ? await loadKey(o.key) : await loadOrCreateKey(defaultKeyPath());
  home.sessions.addKey(psk, null);
  const addr = await home.listen(o.listen);
  const credential = randomBytes(32).toString('hex');
  const api = homeApi(home, credential);
  const { host, port } = parseHostPort(o.api, { allowPortZero: true });
  await new Promise<void>((res, rej) => api.once('error', rej).listen(port, host, res));
  const a = api.address() as { address: string; port: number };
  const url = `http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;
  const state = o.state ?? homeStateFile();
  fs.mkdirSync(path.dirname(state), { recursive: true });
  fs.writeFileSync(state, JSON.stringify({ api: url, credential, vms: addr }) + '\n', {
    mode: 0o600,
  });
  process.stderr.write(`roam: home listening on ${addr}\n`);
  process.stderr.write(`roam: home api ${url} (credential in ${state})\n`);
  process.stderr.write(`roam: home dashboard ${url}/dashboard#${credential}\n`);
  const stop = (): void => {
    api.close();
    home.close();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

export function register(program: Command): void {
  const home = program
    .command('home')
    .description(
      "The customer's side: runs your jobs on nodes, relays their published ports, arbitrates their migrations (SQLite)",
    )
    .option(
      '--listen <addr>',
      'TCP address for VMs to call home on: their sessions and the commit arbiter (port 0 picks one)',
      '127.0.0.1:0',
    )
    .option(
      '--advertise <host:port>',
      'the address VMs are told to call home on, if not --listen (NAT, a proxy, --listen 0.0.0.0:PORT)',
    )
    .option('--api <addr>', 'HTTP address of the API `roam submit`/`roam jobs` use', '127.0.0.1:0')
    .option('--db <file>', 'jobs and the migration ledger (SQLite), created if missing', 'home.db')
    .option(
      '--key <file>',
      'accept migrations ordered by hand under this key (default: $ROAM_HOME/checkpoint.key)',
    )
    .option('--broker <url>', 'the broker to buy tokens from (needed for roam submit)')
    .option(
      '--customer-key <file>',
      'your broker credential (from roam broker add-customer -o FILE)',
    )
    .option(
      '--node <host:port>',
      'a node a draining VM may move to (repeatable; nodes of your jobs count too)',
      collect,
      [],
    )
    .option(
      '--state <file>',
      'where to write the API address and credential',
      '$ROAM_HOME/home.json',
    )
    .option(
      '--topup-units <n>',
      'units bought when a VM asks for a top-up (default: as many as its first token)',
      positiveInt,
    )
    .addHelpText(
      'after',
      `
Prints "roam: home listening on HOST:PORT" (where VMs call home) and the API's
URL on stderr, and writes the URL and a fresh credential to --state (mode 600),
where roam submit, roam jobs, roam migrate JOB and roam stop JOB find them.

Each VM it submits opens one session to home (outbound from the node, so it works
behind NAT) and keeps it across migrations; clients of a published port talk to
home, which relays each connection over that session, so a migration neither
resets nor loses a byte of them. Every migration commits or aborts by home's one
decision, written to its ledger first.

Examples:
  roam home --broker http://127.0.0.1:7400 --customer-key alice.key --db home.db
  roam submit examples/game-server.wasm --node 127.0.0.1:7501 --publish 127.0.0.1:9000:7000
  roam migrate j3f2a9c01d --to 127.0.0.1:7502`,
    )
    .action((o: HomeFlags) =>
      serveHome({ ...o, state: o.state === '$ROAM_HOME/home.json' ? undefined : o.state }),
    );
  defineLedger(home);
}

function defineLedger(home: Command): void {
  home
    .command('ledger')
    .description('List the migrations home arbitrated and their decisions')
    .option('--db <file>', 'the ledger (SQLite)', 'home.db')
    .option('--json', 'one JSON object per line')
    .action((_o, cmd: Command) => {
      // `--db` may have been given to `roam home` itself (`roam home --db F ledger`):
      // whichever the user typed wins over the other's default.
      const o = cmd.opts<{ db: string; json?: boolean }>();
      const parent = cmd.parent;
      const db =
        cmd.getOptionValueSource('db') !== 'cli' && parent?.getOptionValueSource('db') === 'cli'
          ? parent.opts<{ db: string }>().db
          : o.db;
      const ledger = new HomeLedger(db);
      for (const r of ledger.list(1000)) {
        if (o.json) console.log(JSON.stringify(r));
        else
          console.log(
            `${r.id}  vm ${r.vm}  to ${r.dest}  ${r.decision ?? 'undecided'}${r.reason ? ` (${r.reason})` : ''}`,
          );
      }
      ledger.close();
    });
}
