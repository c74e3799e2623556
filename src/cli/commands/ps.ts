import fs from 'node:fs';
import path from 'node:path';
import { RoamError } from '../../util/errors.js';
import { collect } from '../options.js';
import type { Command } from 'commander';
import { listVms, type VmRecord } from '../../vm/control.js';

/** Resident memory of a process, from /proc (bytes; null where /proc does not say). */
function residentBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function uptime(started: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(started)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${(s / 3600).toFixed(1)}h`;
}

const row = (v: VmRecord & { state: string; rss: number | null }): string[] => [
  v.id,
  String(v.pid),
  v.state,
  v.rss === null ? '-' : `${(v.rss / 1048576).toFixed(0)} MiB`,
  uptime(v.started),
  v.kind === 'cstrap'
    ? `waiting on ${v.listen ?? '?'}`
    : [v.program, ...v.args].join(' ') + (v.restoredFrom ? ` (from vm ${v.restoredFrom})` : ''),
];

export function register(program: Command): void {
  program
    .command('ps')
    .description('List the VMs on this host: running VMs and empty cstraps waiting for one')
    .option('--json', 'print JSON: one object per VM')
    .option(
      '--node <state-dir>',
      "also the VMs a node daemon hosts: its --state folder (each VM's registry is in its own folder there)",
      collect,
      [],
    )
    .addHelpText(
      'after',
      `
STATE is "running" for a VM and "waiting" for an empty cstrap. MEMORY is the
process' resident memory (from /proc). VMs that a node daemon hosts have their
own ROAM_HOME (their folder under the daemon's --state); --node DIR lists them.`,
    )
    .action((o: { json?: boolean; node: string[] }) => {
      const hosted = o.node.flatMap((dir) => {
        if (!fs.existsSync(dir))
          throw new RoamError('no-node-state', `--node ${dir}: no such folder`, { kind: 'usage' });
        return fs
          .readdirSync(dir, { withFileTypes: true })
          .filter((d) => d.isDirectory())
          .flatMap((d) => listVms(path.join(dir, d.name, 'vms')));
      });
      const vms = [...listVms(), ...hosted].map((v) => ({
        ...v,
        state: v.kind === 'cstrap' ? 'waiting' : 'running',
        rss: residentBytes(v.pid),
      }));
      if (o.json) return console.log(JSON.stringify(vms));
      if (vms.length === 0) return console.log('no VMs running');
      const rows = [['VM', 'PID', 'STATE', 'MEMORY', 'UPTIME', 'PROGRAM'], ...vms.map(row)];
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
