// `roam agent`: the node's side of the pull-only control plane.
import type { Command } from 'commander';
import { Agent } from '../../agent/agent.js';
import { readKey } from './control.js';
import { httpUrl, integer, seconds } from '../options.js';

interface AgentOpts {
  control: string;
  key: string;
  node: string;
  state: string;
  cache: string;
  poll: number;
  renew: number;
  pulseLoss: number;
  pulse: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('agent')
    .description(
      'keep this node running what the control service describes for it (connects out only)',
    )
    .requiredOption('--control <url>', 'the control service', httpUrl)
    .requiredOption(
      '--key <file>',
      "this node's key at the control service (roam control add-node)",
    )
    .requiredOption('--node <host:port>', "the node daemon's UDP address")
    .requiredOption(
      '--state <dir>',
      "the node daemon's --state folder (where it keeps each VM's folder)",
    )
    .requiredOption(
      '--cache <dir>',
      'where the agent caches the description, programs and job keys',
    )
    .option(
      '--poll <duration>',
      'slow poll, in case Pulse datagrams are lost (e.g. 30s, 5m; a bare number is seconds)',
      seconds({ max: 86_400 }),
      60,
    )
    .option(
      '--renew <duration>',
      'renew Pulse subscriptions this often (30-300 behind NATs; e.g. 30s; a bare number is seconds)',
      seconds({ max: 3600 }),
      30,
    )
    .option(
      '--pulse-loss <percent>',
      'drop this share of incoming Pulse datagrams (testing the slow poll)',
      integer(0, 100),
      0,
    )
    .option('--no-pulse', 'do not subscribe: poll only')
    .option('--json', 'its lines on stderr as JSON ({"event":"log","message":...})')
    .addHelpText(
      'after',
      `
The agent fetches GET /v1/node from the control service; the answer carries the
Pulse H(s) of the next change and the rendezvous servers to subscribe at. On an
event (or every --poll seconds) it fetches again and boots, uploads, migrates or
ends VMs until the node matches. It prints one line per change on stderr.`,
    )
    .action((o: AgentOpts) => {
      const say = (message: string, event = 'log'): void =>
        void process.stderr.write(
          `${o.json ? JSON.stringify({ event, message, control: o.control }) : message}\n`,
        );
      const a = new Agent({
        control: o.control,
        key: readKey(o.key),
        daemon: o.node,
        stateDir: o.state,
        cacheDir: o.cache,
        pollMs: o.poll * 1000,
        renewMs: o.renew * 1000,
        lossRate: o.pulseLoss / 100,
        noPulse: !o.pulse,
        log: (m) => say(m),
      });
      a.start();
      say(`agent: started for ${o.control}`, 'started');
      const stop = () => {
        a.close();
        process.exit(0);
      };
      process.once('SIGINT', stop).once('SIGTERM', stop);
    });
}
