import type { Command } from 'commander';
import { Arbiter } from '../../home/arbiter.js';
import { HomeLedger } from '../../home/ledger.js';
import { loadKey, defaultKeyPath, loadOrCreateKey } from '../../format/index.js';
import { parseHostPort } from '../../util/address.js';

export function register(program: Command): void {
  const home = program
    .command('home')
    .description(
      "The customer's side: arbitrates its VMs' migrations (one durable decision each, in SQLite)",
    )
    .option(
      '--listen <addr>',
      'TCP address for VMs to call home on (port 0 picks one)',
      '127.0.0.1:0',
    )
    .option('--db <file>', 'the ledger (SQLite), created if missing', 'home.db')
    .option('--key <file>', "the VMs' key (default: $ROAM_HOME/checkpoint.key)")
    .addHelpText(
      'after',
      `
Prints "roam: home listening on HOST:PORT" on stderr. Give that address to
\`roam migrate VM --to DST --home HOST:PORT\`: the destination then runs only
once home has written COMMIT to its ledger, and the source unfences only on
ABORT. \`roam home ledger --db FILE\` lists the decisions.`,
    )
    .action(async (o: { listen: string; db: string; key?: string }) => {
      const { host, port } = parseHostPort(o.listen, { allowPortZero: true });
      const psk = o.key ? await loadKey(o.key) : await loadOrCreateKey(defaultKeyPath());
      const ledger = new HomeLedger(o.db);
      const arbiter = new Arbiter(ledger, psk, (m) => process.stderr.write(`roam: home: ${m}\n`));
      const addr = await arbiter.listen(host, port);
      process.stderr.write(`roam: home listening on ${addr}\n`);
      const stop = (): void => {
        arbiter.close();
        ledger.close();
        process.exit(0);
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
  home
    .command('ledger')
    .description('List the migrations home arbitrated and their decisions')
    .option('--db <file>', 'the ledger (SQLite)', 'home.db')
    .option('--json', 'one JSON object per line')
    .action((_o, cmd: Command) => {
      // `--db` may have been taken by `roam home` itself, before or after `ledger`.
      const o = cmd.optsWithGlobals<{ db: string; json?: boolean }>();
      const ledger = new HomeLedger(o.db);
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
