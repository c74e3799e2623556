// `roam tokens`: buy boot tokens and top-ups from the broker, check a job's
// balance on its node, and turn the unspent balance back into money.
import { Command, InvalidArgumentError } from 'commander';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { loaderHash } from '../../migrate/loader.js';
import type { BrokerClient } from '../../broker/client.js';
import { decodeBootToken, type BootToken } from '../../tokens/boot-token.js';
import { request, type RequestOptions } from '../../host/client.js';
import { reasonName } from '../../tokens/issue.js';
import type { Message } from '../../host/protocol.js';
import { STATES } from '../../host/packetd.js';
import { brokerClient } from './broker.js';
import { duration, integer, seconds, wholeSize } from '../options.js';

export function readToken(file: string): { raw: Buffer; token: BootToken } {
  const raw = readFileSync(file);
  const p = decodeBootToken(raw);
  if (!p.ok) throw new Error(`${file} is not a boot token (${p.reason})`);
  return { raw, token: p.value };
}

// The reply of the expected type, or an error naming the node's refusal.
export function expect<T extends Message['type']>(
  m: Message,
  type: T,
): Extract<Message, { type: T }> {
  if (m.type === 'REFUSED') throw new Error(`node refused: ${reasonName(m.reason)}`);
  if (m.type !== type) throw new Error(`unexpected ${m.type} reply from node`);
  return m as Extract<Message, { type: T }>;
}

const balanceLine = (m: Extract<Message, { type: 'BALANCE' }>) =>
  `job ${m.jobId.toString('hex')} balance ${m.balance} (credited ${m.credited}, spent ${m.spent}), vm ${STATES[m.state] ?? 'unknown'}${m.closed ? ', closed' : ''}`;

// The job's key signs its requests to the node (STATUS, TOPUP, REFUND): TOKEN.key unless --key.
const udp = (o: {
  timeout: number;
  retries: number;
  token: string;
  key?: string;
}): RequestOptions => {
  const file = o.key ?? `${o.token}.key`;
  let key: Buffer;
  try {
    key = readFileSync(file);
  } catch (e) {
    throw new InvalidArgumentError(
      `the job's key ${file}: ${(e as Error).message} (written by roam tokens buy beside the token; or pass --key FILE)`,
    );
  }
  if (key.length !== 32)
    throw new InvalidArgumentError(`${file} is not a job key (32 bytes, from roam tokens buy)`);
  return { timeoutMs: o.timeout, retries: o.retries, key };
};
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
    .option('--key <file>', "the job's key, which signs requests to the node (default: TOKEN.key)");

function defineBuy(tokens: Command): void {
  tokens
    .command('buy')
    .description('buy a boot token with COUNT units for one job on one node')
    .requiredOption('--broker <url>', 'broker URL')
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
    .action(
      async (o: {
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
      }) => {
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
        process.stdout.write(
          `job ${r.jobId} on ${r.node}: ${r.units} units for ${r.cost}, token in ${o.out}, VM key in ${o.out}.key (use before ${new Date(r.expiry * 1000).toISOString()}); balance ${r.balance}\n`,
        );
      },
    );
}

function defineTopup(tokens: Command): void {
  udpOptions(
    tokens
      .command('topup')
      .description('buy COUNT more units for the job of TOKEN; with --node, deliver them at once')
      .requiredOption('--broker <url>', 'broker URL')
      .requiredOption(...CUSTOMER_KEY)
      .requiredOption('--token <file>', 'the boot token of the job')
      .requiredOption('--count <k>', 'units to buy', integer(1))
      .option('--node <host:port>', "deliver the top-up to the job's node")
      .option('-o, --out <file>', 'also write the top-up datagram body to this file'),
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
    }) => {
      const jobId = readToken(o.token).token.jobId;
      const signed = o.node ? udp(o) : undefined; // before paying: a missing key is found first
      const r = await customer(o).topup(jobId.toString('hex'), o.count);
      if (o.out) writeFileSync(o.out, r.message, { mode: 0o600 });
      process.stdout.write(
        `bought ${r.units} units for ${r.cost} (element s_{n-${r.released}} = ${r.element}); balance ${r.balance}\n`,
      );
      if (o.node)
        process.stdout.write(
          `${await deliver(o.node, jobId, Buffer.from(r.element, 'hex'), r.released, signed!)}\n`,
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
      .requiredOption('--broker <url>', 'broker URL')
      .requiredOption(...CUSTOMER_KEY)
      .requiredOption('--token <file>', 'the boot token of the job')
      .requiredOption('--node <host:port>', "the job's node"),
  ).action(
    async (o: {
      broker: string;
      customerKey: string;
      token: string;
      key?: string;
      node: string;
      timeout: number;
      retries: number;
    }) => {
      const jobId = readToken(o.token).token.jobId;
      const j = await customer(o).job(jobId.toString('hex'));
      process.stdout.write(
        `${await deliver(o.node, jobId, Buffer.from(j.element, 'hex'), j.released, udp(o))}\n`,
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
      .requiredOption('--node <host:port>', "the job's node"),
  ).action(
    async (o: { token: string; key?: string; node: string; timeout: number; retries: number }) => {
      const m = await request(
        o.node,
        { type: 'STATUS', jobId: readToken(o.token).token.jobId },
        udp(o),
      );
      process.stdout.write(`${balanceLine(expect(m, 'BALANCE'))}\n`);
    },
  );
}

function defineRefund(tokens: Command): void {
  udpOptions(
    tokens
      .command('refund')
      .description('close the job on its node and redeem the unspent units at the broker')
      .requiredOption('--broker <url>', 'broker URL')
      .requiredOption(...CUSTOMER_KEY)
      .requiredOption('--token <file>', 'the boot token of the job')
      .requiredOption('--node <host:port>', "the job's node")
      .option('--certificate-out <file>', 'keep the redemption certificate here as well'),
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
    }) => {
      const m = expect(
        await request(o.node, { type: 'REFUND', jobId: readToken(o.token).token.jobId }, udp(o)),
        'CERT',
      );
      if (o.certificateOut) writeFileSync(o.certificateOut, m.certificate, { mode: 0o600 });
      const r = await customer(o).redeem(m.certificate);
      process.stdout.write(
        `job ${r.jobId} closed: ${r.units} units refunded for ${r.amount}; balance ${r.balance}\n`,
      );
    },
  );
}

function defineRedeem(tokens: Command): void {
  tokens
    .command('redeem')
    .description('redeem a saved redemption certificate at the broker')
    .requiredOption('--broker <url>', 'broker URL')
    .requiredOption(...CUSTOMER_KEY)
    .requiredOption(
      '--certificate <file>',
      'certificate written by tokens refund --certificate-out',
    )
    .action(async (o: { broker: string; customerKey: string; certificate: string }) => {
      const r = await customer(o).redeem(readFileSync(o.certificate));
      process.stdout.write(
        `job ${r.jobId}: ${r.units} units refunded for ${r.amount}; balance ${r.balance}\n`,
      );
    });
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

// Sends s_{n-released} with k = released - credited, so that top-ups whose
// delivery was lost are credited too; the node checks f^k(element) itself.
async function deliver(
  node: string,
  jobId: Buffer,
  element: Buffer,
  released: number,
  o: RequestOptions,
): Promise<string> {
  const s = expect(await request(node, { type: 'STATUS', jobId }, o), 'BALANCE');
  if (s.credited >= released) return `already credited: ${balanceLine(s)}`;
  const m = await request(node, { type: 'TOPUP', jobId, element, units: released - s.credited }, o);
  if (m.type === 'REFUSED' && reasonName(m.reason) === 'already-credited')
    return 'already credited (a retransmission)';
  return balanceLine(expect(m, 'BALANCE'));
}
