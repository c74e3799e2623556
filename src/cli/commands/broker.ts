// `roam broker`: run the token broker, and its administration subcommands.
import { Command, InvalidArgumentError } from 'commander';
import { emit, examples, httpUrl, integer, JSON_FLAG, seconds } from '../options.js';
import { writeFileSync } from 'node:fs';
import { pino } from 'pino';
import { startBroker } from '../../broker/server.js';
import { BrokerClient, readKeyFile } from '../../broker/client.js';
import { parseHostPort } from '../../util/address.js';
import { RoamError } from '../../util/errors.js';

/** A client acting as the admin (--admin-key) or a customer (--customer-key), as the command asks. */
export function brokerClient(o: { broker: string; adminKey?: string; customerKey?: string }) {
  if (o.customerKey)
    return new BrokerClient(o.broker, readKeyFile(o.customerKey, '--customer-key'));
  if (o.adminKey) return new BrokerClient(o.broker, readKeyFile(o.adminKey, '--admin-key'));
  throw new InvalidArgumentError(
    'pass --customer-key FILE (from roam broker add-customer -o) or --admin-key FILE (written by roam broker on first start)',
  );
}
const ADMIN_KEY = [
  '--admin-key <file>',
  "the broker's admin credential (DB.admin, written on first start)",
] as const;

function defineEnrollNode(broker: Command): void {
  broker
    .command('enroll-node')
    .description('enrol a node: the broker generates its shared secret, shown only this once')
    .requiredOption('--broker <url>', 'broker URL', httpUrl)
    .requiredOption(...ADMIN_KEY)
    .requiredOption('--node <id>', 'node id (1-64 of A-Z a-z 0-9 . _ -)')
    .option('--price <n>', 'money per unit on this node', integer(0), 1)
    .option(
      '-o, --secret-out <file>',
      'write the secret to this file (mode 0600) instead of printing it',
    )
    .option(...JSON_FLAG)
    .addHelpText(
      'after',
      examples([
        'roam broker enroll-node --broker http://127.0.0.1:7400 --admin-key ledger.db.admin --node n1 -o n1.secret',
      ]),
    )
    .action(
      async (o: {
        broker: string;
        adminKey: string;
        node: string;
        price: number;
        secretOut?: string;
        json?: boolean;
      }) => {
        const r = await brokerClient(o).enrollNode(o.node, o.price);
        if (o.json) {
          if (o.secretOut) writeFileSync(o.secretOut, `${r.secret}\n`, { mode: 0o600, flag: 'wx' });
          const shown = o.secretOut ? { secretFile: o.secretOut } : { secret: r.secret };
          emit(true, { event: 'enrolled', node: r.id, price: r.price, ...shown }, '');
        } else if (o.secretOut) {
          writeFileSync(o.secretOut, `${r.secret}\n`, { mode: 0o600, flag: 'wx' });
          process.stdout.write(
            `node ${r.id} enrolled at price ${r.price}; secret written to ${o.secretOut}\n`,
          );
        } else {
          process.stdout.write(`${r.secret}\n`);
          process.stderr.write(
            `node ${r.id} enrolled at price ${r.price}; keep this secret: it is not shown again\n`,
          );
        }
      },
    );
}

function defineAddCustomer(broker: Command): void {
  broker
    .command('add-customer')
    .description('create a customer account')
    .requiredOption('--broker <url>', 'broker URL', httpUrl)
    .requiredOption(...ADMIN_KEY)
    .requiredOption('--customer <id>', 'customer id')
    .option('--balance <amount>', 'initial deposit', integer(0), 0)
    .option(
      '-o, --key-out <file>',
      "write the customer's credential here (0600) instead of printing it",
    )
    .option(...JSON_FLAG)
    .addHelpText(
      'after',
      examples([
        'roam broker add-customer --broker http://127.0.0.1:7400 --admin-key ledger.db.admin --customer alice --balance 1000 -o alice.key',
      ]),
    )
    .action(
      async (o: {
        broker: string;
        adminKey: string;
        customer: string;
        balance: number;
        keyOut?: string;
        json?: boolean;
      }) => {
        const r = await brokerClient(o).addCustomer(o.customer, o.balance);
        if (o.keyOut) writeFileSync(o.keyOut, `${r.key}\n`, { mode: 0o600, flag: 'wx' });
        if (o.json) {
          const shown = o.keyOut ? { keyFile: o.keyOut } : { key: r.key };
          return emit(
            true,
            { event: 'customer', customer: r.id, balance: r.balance, ...shown },
            '',
          );
        }
        if (!o.keyOut) process.stdout.write(`${r.key}\n`);
        process.stderr.write(
          `customer ${r.id} balance ${r.balance}; credential ${o.keyOut ? `in ${o.keyOut}` : 'above'} (shown only this once)\n`,
        );
      },
    );
}

function defineDeposit(broker: Command): void {
  broker
    .command('deposit')
    .description("add money to a customer's account")
    .requiredOption('--broker <url>', 'broker URL', httpUrl)
    .requiredOption(...ADMIN_KEY)
    .requiredOption('--customer <id>', 'customer id')
    .requiredOption('--amount <amount>', 'amount', integer(1, 1_000_000_000))
    .option(...JSON_FLAG)
    .addHelpText(
      'after',
      examples([
        'roam broker deposit --broker http://127.0.0.1:7400 --admin-key ledger.db.admin --customer alice --amount 500',
      ]),
    )
    .action(
      async (o: {
        broker: string;
        adminKey: string;
        customer: string;
        amount: number;
        json?: boolean;
      }) => {
        const r = await brokerClient(o).deposit(o.customer, o.amount);
        emit(
          o.json,
          { event: 'balance', customer: r.id, balance: r.balance },
          `customer ${r.id} balance ${r.balance}`,
        );
      },
    );
}

function defineBalance(broker: Command): void {
  broker
    .command('balance')
    .description("show a customer's balance")
    .requiredOption('--broker <url>', 'broker URL', httpUrl)
    .option('--customer <id>', 'customer id (default: the --customer-key one)')
    .option('--customer-key <file>', "the customer's credential")
    .option(...ADMIN_KEY)
    .option(...JSON_FLAG)
    .addHelpText(
      'after',
      examples([
        'roam broker balance --broker http://127.0.0.1:7400 --customer-key alice.key',
        'roam broker balance --broker http://127.0.0.1:7400 --admin-key ledger.db.admin --customer alice --json',
      ]),
    )
    .action(
      async (o: {
        broker: string;
        customer?: string;
        customerKey?: string;
        adminKey?: string;
        json?: boolean;
      }) => {
        const c = brokerClient(o);
        const id = o.customer ?? c.who;
        if (!id || id === 'admin')
          throw new InvalidArgumentError('--customer <id> is required with --admin-key');
        const r = await c.customer(id);
        emit(
          o.json,
          { event: 'balance', customer: r.id, balance: r.balance },
          `customer ${r.id} balance ${r.balance}`,
        );
      },
    );
}

interface ServeOptions {
  listen: string;
  db?: string;
  chainLength: number;
  tokenTtl: number;
  adminKeyOut?: string;
  json?: boolean;
}

async function serve(o: ServeOptions): Promise<void> {
  if (!o.db)
    throw new RoamError(
      'missing-db',
      '--db FILE is required to run the broker (see roam broker --help)',
      { kind: 'usage' },
    );
  const { host, port } = parseHostPort(o.listen, { allowPortZero: true });
  const b = await startBroker({
    db: o.db,
    host,
    port,
    chainLength: o.chainLength,
    tokenTtlS: o.tokenTtl,
    adminKeyFile: o.adminKeyOut,
    // JSON lines on stderr, one per request; ROAM_LOG_LEVEL=warn keeps only refusals.
    log: pino(
      { name: 'roam-broker', level: process.env.ROAM_LOG_LEVEL ?? 'info' },
      pino.destination(2),
    ),
  });
  if (o.json)
    emit(
      true,
      {
        event: 'listening',
        url: b.url,
        db: o.db,
        adminKeyFile: b.adminKeyFile,
        adminKeyCreated: b.adminKeyCreated,
      },
      '',
    );
  else {
    if (b.adminKeyCreated)
      process.stdout.write(`admin credential written to ${b.adminKeyFile} (mode 0600); keep it\n`);
    process.stdout.write(`broker listening on ${b.url} (ledger ${o.db})\n`);
  }
  const stop = () => void b.close().then(() => process.exit(0));
  process.once('SIGINT', stop).once('SIGTERM', stop);
}

export function register(program: Command): void {
  const broker = program
    .command('broker')
    .description('run the token broker (HTTP + SQLite ledger), or administer a running one')
    .option('--listen <addr>', 'HOST:PORT to listen on (":0" picks a free port)', '127.0.0.1:7400')
    .option('--db <file>', 'SQLite ledger file (created and migrated if needed)')
    .option(
      '--chain-length <n>',
      'hash-chain length n of each new job',
      integer(1, 10_000_000),
      100_000,
    )
    .option(
      '--token-ttl <duration>',
      'default boot-token validity (e.g. 10m; a bare number is seconds)',
      seconds({ max: 30 * 86400 }),
      600,
    )
    .option(
      '--admin-key-out <file>',
      'where the first start writes the admin credential (0600; default: DB.admin)',
    )
    .option('--json', 'print the listening address (and where the admin credential went) as JSON')
    .addHelpText(
      'after',
      `
Each request is logged on stderr as a JSON line (ROAM_LOG_LEVEL=warn keeps only refusals).
${examples([
  'roam broker --db ledger.db --listen 127.0.0.1:7400',
  'roam broker --db ledger.db --listen 127.0.0.1:0 --json',
])}`,
    )
    .action(serve);

  defineEnrollNode(broker);
  defineAddCustomer(broker);
  defineDeposit(broker);
  defineBalance(broker);
}
