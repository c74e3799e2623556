// `roam tokens`: buy boot tokens and top-ups from the broker, check a job's
// balance on its node, and turn the unspent balance back into money.
import type { Command } from 'commander';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { loaderHash } from '../../migrate/loader.js';
import type { BrokerClient } from '../../broker/client.js';
import { request } from '../../host/client.js';
import { balanceJson, balanceLine, deliver, expect, readToken, report, udp } from './tokens-udp.js';
import { brokerClient } from './broker.js';
import {
  duration,
  emit,
  examples,
  httpUrl,
  integer,
  JSON_FLAG,
  seconds,
  wholeSize,
} from '../options.js';

const customer = (o: { broker: string; customerKey: string }): BrokerClient => brokerClient(o);
const CUSTOMER_KEY = [
  '--customer-key <file>',
  'your broker credential (from roam broker add-customer -o FILE)',
] as const;

const udpOptions = (c: Command): Command =>
  c
    .option(
      '--timeout <duration>',
      'wait this long for each UDP answer (e.g. 500ms, 2s; a bare number is ms)',
      duration('ms', { max: 60_000 }),
      500,
    )
    .option('--retries <n>', 'resend this many times', integer(0, 100), 4)
    .option('--key <file>', "the job's key, which signs requests to the node (default: TOKEN.key)")
    .option(...JSON_FLAG);

function defineBuy(tokens: Command): void {
  tokens
    .command('buy')
    .description('buy a boot token with COUNT units for one job on one node')
    .requiredOption('--broker <url>', 'broker URL', httpUrl)
    .requiredOption(...CUSTOMER_KEY)
    .option('--customer <id>', "customer account to charge (must be the credential's own)")
    .requiredOption('--node <id>', 'node the token is minted for (valid there only)')
    .requiredOption('--count <k>', 'units to buy', integer(1))
    .requiredOption(
      '-o, --out <file>',
      'where to write the boot token (and the VM key, to FILE.key)',
    )
    .option(
      '--memory <size>',
      'memory limit of the VM (e.g. 256M, 1G; a bare number is MiB)',
      wholeSize('MiB'),
    )
    .option('--cpu-share <percent>', 'CPU share (100 = one core)', integer(1, 65535))
    .option('--ports <n>', 'public ports the VM may use', integer(0, 65535))
    .option(
      '--lifetime <duration>',
      'longest life of the VM (e.g. 1h; a bare number is seconds)',
      seconds(),
    )
    .option('--loader <file>', 'pin this loader: the cstrap accepts only its SHA-256')
    .option(
      '--loader-sha256 <hex>',
      "pin a loader by its SHA-256 (default: this roam's, see roam cstrap --print-loader-hash)",
    )
    .option(
      '--ttl <duration>',
      'how long the token may wait before it is used (e.g. 10m; a bare number is seconds)',
      seconds(),
    )
    .option(...JSON_FLAG)
    .addHelpText(
      'after',
      `
--node is the node's id as enrolled at the broker (the token is valid there only);
the other tokens commands take the node daemon's HOST:PORT.
${examples([
  'roam tokens buy --broker http://127.0.0.1:7400 --customer-key alice.key --node n1 --count 500 -o job.token',
  'roam tokens buy --broker http://127.0.0.1:7400 --customer-key alice.key --node n1 --count 500 --memory 256M --lifetime 1h -o job.token',
])}`,
    )
    .action(buy);
}

type BuyOptions = {
  broker: string;
  customerKey: string;
  customer?: string;
  node: string;
  count: number;
  out: string;
  memory?: number;
  cpuShare?: number;
  ports?: number;
  lifetime?: number;
  loader?: string;
  loaderSha256?: string;
  ttl?: number;
  json?: boolean;
};

async function buy(o: BuyOptions): Promise<void> {
  const loaderSha256 = o.loader
    ? createHash('sha256').update(readFileSync(o.loader)).digest('hex')
    : (o.loaderSha256?.toLowerCase() ?? loaderHash());
  const r = await customer(o).buy({
    customer: o.customer,
    node: o.node,
    count: o.count,
    memoryMiB: o.memory,
    cpuShare: o.cpuShare,
    ports: o.ports,
    lifetimeS: o.lifetime,
    loaderSha256,
    ttlS: o.ttl,
  });
  writeFileSync(o.out, r.token, { mode: 0o600 });
  writeFileSync(`${o.out}.key`, Buffer.from(r.key, 'hex'), { mode: 0o600 });
  const expires = new Date(r.expiry * 1000).toISOString();
  emit(
    o.json,
    {
      event: 'bought',
      job: r.jobId,
      node: r.node,
      units: r.units,
      cost: r.cost,
      token: o.out,
      key: `${o.out}.key`,
      expires,
      balance: r.balance,
    },
    `job ${r.jobId} on ${r.node}: ${r.units} units for ${r.cost}, token in ${o.out}, VM key in ${o.out}.key (use before ${expires}); balance ${r.balance}`,
  );
}

function defineTopup(tokens: Command): void {
  udpOptions(
    tokens
      .command('topup')
      .description('buy COUNT more units for the job of TOKEN; with --node, deliver them at once')
      .requiredOption('--broker <url>', 'broker URL', httpUrl)
      .requiredOption(...CUSTOMER_KEY)
      .requiredOption('--token <file>', 'the boot token of the job')
      .requiredOption('--count <k>', 'units to buy', integer(1))
      .option('--node <host:port>', "deliver the top-up to the job's node")
      .option('-o, --out <file>', 'also write the top-up datagram body to this file')
      .addHelpText(
        'after',
        examples([
          'roam tokens topup --broker http://127.0.0.1:7400 --customer-key alice.key --token job.token --count 200 --node 127.0.0.1:7401',
        ]),
      ),
  ).action(
    async (o: {
      broker: string;
      customerKey: string;
      token: string;
      key?: string;
      count: number;
      node?: string;
      out?: string;
      timeout: number;
      retries: number;
      json?: boolean;
    }) => {
      const jobId = readToken(o.token).token.jobId;
      const signed = o.node ? udp(o) : undefined; // before paying: a missing key is found first
      const r = await customer(o).topup(jobId.toString('hex'), o.count);
      if (o.out) writeFileSync(o.out, r.message, { mode: 0o600 });
      // The chain element is the proof of payment the node checks: JSON carries it, people need not read it.
      emit(
        o.json,
        {
          event: 'bought',
          units: r.units,
          cost: r.cost,
          balance: r.balance,
          released: r.released,
          element: r.element,
        },
        `bought ${r.units} units for ${r.cost}; your balance at the broker ${r.balance}${o.node ? '' : ' (deliver them with roam tokens sync)'}`,
      );
      if (o.node)
        report(
          o.json,
          await deliver(o.node, jobId, Buffer.from(r.element, 'hex'), r.released, signed!),
        );
    },
  );
}

function defineSync(tokens: Command): void {
  udpOptions(
    tokens
      .command('sync')
      .description(
        'deliver every unit bought for the job but not yet credited on its node (after a lost top-up)',
      )
      .requiredOption('--broker <url>', 'broker URL', httpUrl)
      .requiredOption(...CUSTOMER_KEY)
      .requiredOption('--token <file>', 'the boot token of the job')
      .requiredOption('--node <host:port>', "the job's node")
      .addHelpText(
        'after',
        examples([
          'roam tokens sync --broker http://127.0.0.1:7400 --customer-key alice.key --token job.token --node 127.0.0.1:7401',
        ]),
      ),
  ).action(
    async (o: {
      broker: string;
      customerKey: string;
      token: string;
      key?: string;
      node: string;
      timeout: number;
      retries: number;
      json?: boolean;
    }) => {
      const jobId = readToken(o.token).token.jobId;
      const j = await customer(o).job(jobId.toString('hex'));
      report(
        o.json,
        await deliver(o.node, jobId, Buffer.from(j.element, 'hex'), j.released, udp(o)),
      );
    },
  );
}

function defineStatus(tokens: Command): void {
  udpOptions(
    tokens
      .command('status')
      .description("ask the job's node for its balance")
      .requiredOption('--token <file>', 'the boot token of the job')
      .requiredOption('--node <host:port>', "the job's node")
      .addHelpText(
        'after',
        examples(['roam tokens status --token job.token --node 127.0.0.1:7401']),
      ),
  ).action(
    async (o: {
      token: string;
      key?: string;
      node: string;
      timeout: number;
      retries: number;
      json?: boolean;
    }) => {
      const m = await request(
        o.node,
        { type: 'STATUS', jobId: readToken(o.token).token.jobId },
        udp(o),
      );
      const b = expect(m, 'BALANCE');
      emit(o.json, balanceJson(b), balanceLine(b));
    },
  );
}

function defineRefund(tokens: Command): void {
  udpOptions(
    tokens
      .command('refund')
      .description('close the job on its node and redeem the unspent units at the broker')
      .requiredOption('--broker <url>', 'broker URL', httpUrl)
      .requiredOption(...CUSTOMER_KEY)
      .requiredOption('--token <file>', 'the boot token of the job')
      .requiredOption('--node <host:port>', "the job's node")
      .option('--certificate-out <file>', 'keep the redemption certificate here as well')
      .addHelpText(
        'after',
        examples([
          'roam tokens refund --broker http://127.0.0.1:7400 --customer-key alice.key --token job.token --node 127.0.0.1:7401',
        ]),
      ),
  ).action(
    async (o: {
      broker: string;
      customerKey: string;
      token: string;
      key?: string;
      node: string;
      certificateOut?: string;
      timeout: number;
      retries: number;
      json?: boolean;
    }) => {
      const m = expect(
        await request(o.node, { type: 'REFUND', jobId: readToken(o.token).token.jobId }, udp(o)),
        'CERT',
      );
      if (o.certificateOut) writeFileSync(o.certificateOut, m.certificate, { mode: 0o600 });
      const r = await customer(o).redeem(m.certificate);
      emit(
        o.json,
        { event: 'refunded', job: r.jobId, units: r.units, amount: r.amount, balance: r.balance },
        `job ${r.jobId} closed: ${r.units} units refunded for ${r.amount}; your balance at the broker ${r.balance}`,
      );
    },
  );
}

function defineRedeem(tokens: Command): void {
  tokens
    .command('redeem')
    .description('redeem a saved redemption certificate at the broker')
    .requiredOption('--broker <url>', 'broker URL', httpUrl)
    .requiredOption(...CUSTOMER_KEY)
    .requiredOption(
      '--certificate <file>',
      'certificate written by tokens refund --certificate-out',
    )
    .option(...JSON_FLAG)
    .addHelpText(
      'after',
      examples([
        'roam tokens redeem --broker http://127.0.0.1:7400 --customer-key alice.key --certificate job.cert',
      ]),
    )
    .action(
      async (o: { broker: string; customerKey: string; certificate: string; json?: boolean }) => {
        const r = await customer(o).redeem(readFileSync(o.certificate));
        emit(
          o.json,
          { event: 'refunded', job: r.jobId, units: r.units, amount: r.amount, balance: r.balance },
          `job ${r.jobId}: ${r.units} units refunded for ${r.amount}; your balance at the broker ${r.balance}`,
        );
      },
    );
}

export function register(program: Command): void {
  const tokens = program
    .command('tokens')
    .description('buy, top up, check and refund laundromat tokens');

  defineBuy(tokens);
  defineTopup(tokens);
  defineSync(tokens);
  defineStatus(tokens);
  defineRefund(tokens);
  defineRedeem(tokens);
}
