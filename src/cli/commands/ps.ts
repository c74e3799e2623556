import type { Command } from 'commander';
import { listVms } from '../../vm/control.js';

export function register(program: Command): void {
  program
    .command('ps')
    .description('List the VMs running on this host')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => {
      const vms = listVms();
      if (o.json) return console.log(JSON.stringify(vms));
      if (vms.length === 0) return console.log('no VMs running');
      const rows = [
        ['VM', 'PID', 'STARTED', 'PROGRAM'],
        ...vms.map((v) => [
          v.id,
          String(v.pid),
          v.started,
          [v.program, ...v.args].join(' ') +
            (v.restoredFrom ? ` (restored from ${v.restoredFrom})` : ''),
        ]),
      ];
      const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
      for (const r of rows)
        console.log(
          r
            .map((c, i) => c.padEnd(w[i]))
            .join('  ')
            .trimEnd(),
        );
    });
}
