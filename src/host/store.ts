// The job table on disk (issue 13): an append-only log of JSON lines, one per
// change of a job, written and fsync'd before the daemon answers, so that after
// a crash no boot token starts a second VM, no credit is forgotten and a
// suspended VM can still be revived or refunded. Compacted (written aside,
// fsync'd, renamed) when the daemon starts. Only the daemon writes it.
import fs from 'node:fs';
import { dirname } from 'node:path';

export type Saved = {
  token: string; // the boot token, hex
  last: string; // the last chain element credited, hex
  credited: number;
  spent: number;
  state: string;
  since: number;
  deadline: number;
  certificate?: string;
  vmId?: string;
  pid?: number;
};

export class JobStore {
  private fd = -1;
  constructor(private readonly file: string) {}

  /** Every job's latest record; a torn last line (a crash mid-write) is skipped. */
  load(): Map<string, Saved> {
    const jobs = new Map<string, Saved>();
    const text = fs.existsSync(this.file) ? fs.readFileSync(this.file, 'utf8') : '';
    for (const line of text.split('\n'))
      try {
        const [id, rec] = JSON.parse(line) as [string, Saved | null];
        if (rec) jobs.set(id, rec);
        else jobs.delete(id); // forgotten: its launch failed, the token may be tried again
      } catch {
        /* the torn tail */
      }
    const tmp = `${this.file}.tmp`,
      fd = fs.openSync(tmp, 'w', 0o600);
    fs.writeSync(fd, [...jobs].map((e) => `${JSON.stringify(e)}\n`).join(''));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, this.file);
    const dir = fs.openSync(dirname(this.file), 'r'); // the rename itself is durable
    fs.fsyncSync(dir);
    fs.closeSync(dir);
    this.fd = fs.openSync(this.file, 'a', 0o600);
    return jobs;
  }

  /** Durable when it returns. */
  save(entries: [string, Saved | null][]): void {
    if (!entries.length) return;
    fs.writeSync(this.fd, entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
    fs.fsyncSync(this.fd);
  }
}
