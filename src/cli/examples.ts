// Examples at the end of a command's help, for the commands whose files do not
// end their help with their own: one table, applied by program.ts, so that every
// command's help (and docs/cli.md) ends with commands a reader can copy. A unit
// test (cli-docs) fails on a command without examples.
import type { Command } from 'commander';
import { examples } from './options.js';

const BROKER = 'http://127.0.0.1:7400';
const CONTROL = 'http://127.0.0.1:7600';

export const EXAMPLES: Record<string, string[]> = {
  roam: [
    'roam run examples/args.wasm hello',
    'VM=$(roam run --detach examples/counter.wasm 1000 100) && roam checkpoint "$VM" -o vm.ckpt',
    'roam help tokens buy',
  ],
  restore: ['roam restore vm.ckpt', 'roam restore --key other.key --json vm.ckpt'],
  inspect: ['roam inspect vm.ckpt', 'roam inspect --json vm.img'],
  ps: ['roam ps', 'roam ps --json', 'roam ps --node ./node-state'],
  tokens: [
    `roam tokens buy --broker ${BROKER} --customer-key alice.key --node n1 --count 500 -o job.token`,
    'roam tokens status --token job.token --node 127.0.0.1:7401',
  ],
  cstrap: [
    'roam cstrap --listen 0.0.0.0:7100',
    'roam cstrap --listen 127.0.0.1:0 --json',
    'roam cstrap --print-loader-hash',
  ],
  migrate: [
    'roam migrate "$VM" --to dsthost:7100',
    'roam migrate "$VM" --to dsthost:7100 --max-bandwidth 100Mbit --max-downtime 20ms --json',
    'roam migrate "$VM" --to dsthost:7100 --home 127.0.0.1:7500',
  ],
  fork: ['roam fork "$VM" --to dsthost:7100', 'roam fork "$VM" --to dsthost:7100 --json'],
  view: ['roam view "$VM"', 'roam view --log blink.log --listen 127.0.0.1:8080'],
  jobs: ['roam jobs', 'roam jobs --json'],
  'home ledger': ['roam home ledger --db home.db', 'roam home ledger --db home.db --json'],
  pulse: ['roam pulse --listen 127.0.0.1:5353', 'roam pulse --listen 127.0.0.1:0 --json'],
  'pulse release': ['roam pulse release "$S" --rendezvous 127.0.0.1:5353'],
  'pulse wait': ['roam pulse wait "$H" --rendezvous 127.0.0.1:5353 --timeout 10m'],
  control: [
    `roam control --db control.db --broker ${BROKER} --listen 127.0.0.1:7600`,
    'roam control --db postgres://roam@db/roam --listen 0.0.0.0:7600 --json',
  ],
  'control add-customer': [
    `roam control add-customer --control ${CONTROL} --key admin.key --id alice -o alice.ckey`,
  ],
  'control add-node': [
    `roam control add-node --control ${CONTROL} --key admin.key --id n1 -o n1.ckey`,
  ],
  'control upload': [
    `SHA=$(roam control upload examples/echo-server.wasm --control ${CONTROL} --key alice.ckey)`,
  ],
  'control submit': [`roam control submit web.json --control ${CONTROL} --key alice.ckey`],
  'control status': [`roam control status web --control ${CONTROL} --key alice.ckey`],
  agent: [
    `roam agent --control ${CONTROL} --key n1.ckey --node 127.0.0.1:7401 --state ./node-state --cache ./agent-cache`,
  ],
};

/** Adds the table's examples to `cmd` and its subcommands (`path` as in "home ledger"). */
export function addExamples(cmd: Command, path = ''): void {
  const lines = EXAMPLES[path || 'roam'];
  if (lines) cmd.addHelpText('after', examples(lines));
  for (const sub of cmd.commands) addExamples(sub, path ? `${path} ${sub.name()}` : sub.name());
}
