// `roam pulse`: run a Pulse rendezvous server (thesis 8.3.1), and two small tools
// to drive one by hand: release an s, or wait for the s behind an H(s).
import type { Command } from 'commander';
import { Rendezvous } from '../../pulse/rendezvous.js';
import { parseServers, release, Subscriber } from '../../pulse/client.js';
import { parseHostPort } from '../../util/address.js';
import { RoamError } from '../../util/errors.js';
import { integer, seconds } from '../options.js';

const hex32 = (flag: string) => (v: string) => {
  if (!/^[0-9a-f]{64}$/i.test(v))
    throw new RoamError('bad-value', `${flag} must be 64 hex digits (32 bytes)`, { kind: 'usage' });
  return Buffer.from(v, 'hex');
};

const json = (pulse: Command): boolean => pulse.opts<{ json?: boolean }>().json === true;

interface ServeOpts {
  listen: string;
  lease: number;
  retain: number;
  maxSubscriptions: number;
  maxPerAddress: number;
  json?: boolean;
  stats: number;
}

export function register(program: Command): void {
  const pulse = defineServe(program);
  defineRelease(pulse);
  defineWait(pulse);
}

function defineServe(program: Command): Command {
  return program
    .command('pulse')
    .description(
      'run a Pulse rendezvous server (DNS-formatted UDP): subscriptions to H(s), forwarding of released s',
    )
    .option(
      '--listen <addr>',
      'UDP HOST:PORT to listen on (port 0 picks a free one)',
      '127.0.0.1:5353',
    )
    .option(
      '--lease <duration>',
      'lease granted to a subscription (e.g. 30s, 5m; a bare number is seconds)',
      seconds({ max: 86_400 }),
      300,
    )
    .option(
      '--retain <duration>',
      'keep a released s this long for late subscribers (e.g. 30s, 5m; a bare number is seconds)',
      seconds({ max: 86_400 }),
      600,
    )
    .option('--max-subscriptions <n>', 'subscriptions held at most', integer(1), 2_000_000)
    .option(
      '--max-per-address <n>',
      'subscriptions held at most for one IP address',
      integer(1),
      4096,
    )
    .option(
      '--json',
      'print the listening address and, every --stats seconds, counters as JSON lines',
    )
    .option(
      '--stats <duration>',
      'print counters this often (0: never; e.g. 30s; a bare number is seconds)',
      seconds({ max: 86_400, allowZero: true }),
      0,
    )
    .addHelpText(
      'after',
      `
Prints "pulse rendezvous listening on HOST:PORT". Subscribers (roam agent) renew
their subscriptions before the lease ends; the control service releases s when
a description changes. The server only ever sees random values and their hashes.`,
    )
    .action(async (o: ServeOpts) => {
      const { host, port } = parseHostPort(o.listen, { allowPortZero: true });
      const r = new Rendezvous({
        leaseS: o.lease,
        retainS: o.retain,
        maxSubscriptions: o.maxSubscriptions,
        maxPerAddress: o.maxPerAddress,
      });
      const addr = await r.listen(host, port).catch((e: Error) => {
        throw new RoamError('listen', `--listen ${o.listen}: ${e.message}`);
      });
      process.stdout.write(
        o.json
          ? `${JSON.stringify({ event: 'listening', addr })}\n`
          : `pulse rendezvous listening on ${addr}\n`,
      );
      if (o.stats > 0)
        setInterval(() => {
          const line = o.json
            ? JSON.stringify({ event: 'stats', ...r.stats })
            : JSON.stringify(r.stats);
          process.stdout.write(`${line}\n`);
        }, o.stats * 1000);
      const stop = () => {
        r.close();
        process.exit(0);
      };
      process.once('SIGINT', stop).once('SIGTERM', stop);
    });
}

function defineRelease(pulse: Command): void {
  pulse
    .command('release')
    .description('release s at rendezvous servers (what the control service does on a change)')
    .argument('<s>', 'the secret, 64 hex digits', hex32('<s>'))
    .requiredOption(
      '--rendezvous <list>',
      'comma-separated HOST:PORT of rendezvous servers',
      parseServers,
    )
    .option('--json', 'print the result as JSON')
    .action(async (s: Buffer, o: { rendezvous: string[]; json?: boolean }) => {
      o.json = o.json || json(pulse); // before the subcommand, `--json` is the parent's
      const r = await release(s, o.rendezvous);
      if (o.json) process.stdout.write(`${JSON.stringify({ event: 'released', servers: r })}\n`);
      else
        for (const [srv, n] of Object.entries(r))
          process.stdout.write(`${srv}: ${n === null ? 'no answer' : `forwarded to ${n}`}\n`);
      if (Object.values(r).every((n) => n === null))
        throw new RoamError('no-rendezvous', 'no rendezvous server answered', { kind: 'peer' });
    });
}

function defineWait(pulse: Command): void {
  pulse
    .command('wait')
    .description('subscribe to H(s) and wait for s (prints it once it is verified)')
    .argument('<h>', 'H(s), 64 hex digits', hex32('<h>'))
    .requiredOption(
      '--rendezvous <list>',
      'comma-separated HOST:PORT of rendezvous servers',
      parseServers,
    )
    .option(
      '--renew <duration>',
      'renew the subscription this often (e.g. 30s, 5m; a bare number is seconds)',
      seconds({ max: 3600 }),
      30,
    )
    .option(
      '--timeout <duration>',
      'give up after this long (e.g. 30s, 5m; a bare number is seconds)',
      seconds({ max: 86_400 }),
      3600,
    )
    .option('--json', 'print the result as JSON')
    .action(
      async (
        h: Buffer,
        o: { rendezvous: string[]; renew: number; timeout: number; json?: boolean },
      ) => {
        o.json = o.json || json(pulse);
        const sub = new Subscriber({ renewMs: o.renew * 1000 });
        const s = await new Promise<Buffer>((resolve, reject) => {
          const t = setTimeout(
            () =>
              reject(
                new RoamError('timeout', `no event within --timeout ${o.timeout} s`, {
                  kind: 'timeout',
                }),
              ),
            o.timeout * 1000,
          );
          sub.once('event', (_h: Buffer, secret: Buffer) => {
            clearTimeout(t);
            resolve(secret);
          });
          sub.watch(h, o.rendezvous);
        }).finally(() => sub.close());
        process.stdout.write(
          o.json
            ? `${JSON.stringify({ event: 'event', s: s.toString('hex') })}\n`
            : `${s.toString('hex')}\n`,
        );
      },
    );
}
