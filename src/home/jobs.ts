// Home's jobs (SQLite, in the ledger's database): one row per VM the customer
// submitted, with where it runs, the token and key of its current node, its
// published ports and the session's continuation tokens.
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';

export type JobState = 'booting' | 'running' | 'migrating' | 'stopped' | 'failed' | 'lost';

export interface Publish {
  /** HOST:PORT home listens on for clients. */
  listen: string;
  /** The guest's listener `home:PORT`. */
  guest: number;
}

export interface JobRow {
  id: string;
  program: string;
  state: JobState;
  /** UDP address and id of the node daemon the VM runs on. */
  node: string;
  node_id: string;
  /** The boot token (base64) and VM key (hex) bought for that node. */
  token: string;
  vm_key: string;
  cstrap: string;
  vm_id: string;
  session_key: string;
  tok_cur: string;
  tok_prev: string | null;
  publish: string; // JSON Publish[]
  memory: number;
  units: number;
  parent: string | null;
  created: number;
  updated: number;
  migrations: number;
  last_error: string | null;
}

export const newJobId = (): string => `j${randomBytes(5).toString('hex')}`;
export const newSecret = (): string => randomBytes(32).toString('hex');

export class Jobs {
  private readonly db: Database.Database;

  /**
   * Its own connection to home's database: job rows are written without waiting
   * for the disk (synchronous NORMAL), so a VM's call home costs no fsync; losing
   * the last writes in a crash is safe (see rotate). The migration ledger's
   * decisions keep their fsync.
   */
  constructor(file: string) {
    const db = (this.db = new Database(file));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    db.exec(`CREATE TABLE IF NOT EXISTS jobs (
      id TEXT PRIMARY KEY,
      program TEXT NOT NULL,
      state TEXT NOT NULL,
      node TEXT NOT NULL,
      node_id TEXT NOT NULL,
      token TEXT NOT NULL,
      vm_key TEXT NOT NULL,
      cstrap TEXT NOT NULL,
      vm_id TEXT NOT NULL,
      session_key TEXT NOT NULL,
      tok_cur TEXT NOT NULL,
      tok_prev TEXT,
      publish TEXT NOT NULL,
      memory INTEGER NOT NULL,
      units INTEGER NOT NULL,
      parent TEXT,
      created INTEGER NOT NULL,
      updated INTEGER NOT NULL,
      migrations INTEGER NOT NULL DEFAULT 0,
      last_error TEXT
    )`);
  }

  insert(row: Omit<JobRow, 'created' | 'updated' | 'migrations' | 'last_error'>): JobRow {
    const now = Date.now();
    this.db
      .prepare(
        `INSERT INTO jobs (id, program, state, node, node_id, token, vm_key, cstrap, vm_id, session_key,
         tok_cur, tok_prev, publish, memory, units, parent, created, updated)
         VALUES (@id, @program, @state, @node, @node_id, @token, @vm_key, @cstrap, @vm_id, @session_key,
         @tok_cur, @tok_prev, @publish, @memory, @units, @parent, @now, @now)`,
      )
      .run({ ...row, now });
    return this.get(row.id)!;
  }

  get(id: string): JobRow | undefined {
    return this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
  }

  close(): void {
    this.db.close();
  }

  list(): JobRow[] {
    return this.db.prepare('SELECT * FROM jobs ORDER BY created').all() as JobRow[];
  }

  update(id: string, fields: Partial<Omit<JobRow, 'id'>>): void {
    const keys = Object.keys(fields);
    if (!keys.length) return;
    this.db
      .prepare(
        `UPDATE jobs SET ${keys.map((k) => `${k} = @${k}`).join(', ')}, updated = @updated WHERE id = @id`,
      )
      .run({ ...fields, id, updated: Date.now() });
  }

  /**
   * A session presents `token`, the continuation token home gave the VM last: a
   * generation number. It is taken if it is not older than the last one handed
   * out (a VM one ahead, because home lost its last write in a crash, is taken
   * too); the one before is taken only while no session of the job is up (that
   * WELCOME was lost with its session). Anything older is a stale copy of the VM
   * (an old checkpoint restored) and is refused. Returns the next generation.
   */
  rotate(id: string, token: string, attached: boolean): string | null {
    const j = this.get(id);
    const g = /^\d{1,15}$/.test(token) ? Number(token) : -1;
    if (!j || g < Number(j.tok_cur) - (attached ? 0 : 1)) return null;
    const next = String(g + 1);
    this.update(id, { tok_cur: next, tok_prev: token });
    return next;
  }
}
