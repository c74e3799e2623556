// Where the control service keeps everything: it holds no state outside its
// database, so that a restarted service, or several services sharing one
// database, serve the same descriptions. The SQL is kept to what SQLite and
// PostgreSQL both speak (TEXT and INTEGER columns, binary values as hex or
// base64), written with ? placeholders that the PostgreSQL store renumbers.
import Database from 'better-sqlite3';

export type Row = Record<string, string | number | null>;
export type Param = string | number | null;

export interface Sql {
  all(sql: string, params?: Param[]): Promise<Row[]>;
  run(sql: string, params?: Param[]): Promise<number>;
  /** Run `fn` in one serialisable transaction (retried by the caller on conflict). */
  tx<T>(fn: (q: Sql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS customers (id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE)`,
  // version: of the node's description; secret: the Pulse s whose H(s) its current description carries.
  `CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE,
     version INTEGER NOT NULL, secret TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS programs (sha256 TEXT PRIMARY KEY, data TEXT NOT NULL)`,
  // Every description ever submitted, and which one is current.
  `CREATE TABLE IF NOT EXISTS descriptions (customer TEXT NOT NULL, name TEXT NOT NULL,
     version INTEGER NOT NULL, body TEXT NOT NULL, at INTEGER NOT NULL,
     PRIMARY KEY (customer, name, version))`,
  `CREATE TABLE IF NOT EXISTS workloads (customer TEXT NOT NULL, name TEXT NOT NULL,
     version INTEGER NOT NULL, PRIMARY KEY (customer, name))`,
  // One row per instance: the job (boot token) it runs under on its node, and,
  // while it moves, the job it leaves on from_node and the cstrap waiting for it.
  `CREATE TABLE IF NOT EXISTS jobs (customer TEXT NOT NULL, name TEXT NOT NULL, idx INTEGER NOT NULL,
     spec INTEGER NOT NULL, node TEXT NOT NULL, job_id TEXT NOT NULL UNIQUE, token TEXT NOT NULL,
     vm_key TEXT NOT NULL, state TEXT NOT NULL, vm TEXT, cstrap TEXT,
     from_node TEXT, from_job TEXT, from_vm TEXT, from_key TEXT, PRIMARY KEY (customer, name, idx))`,
  // A moving instance's boot URI: where its VM serves itself until the arriving job's cstrap pulls it.
  `CREATE TABLE IF NOT EXISTS pulls (job_id TEXT PRIMARY KEY, uri TEXT NOT NULL)`,
  // Jobs a node must end (removed instances, replaced specs) until it says they have.
  `CREATE TABLE IF NOT EXISTS retired (job_id TEXT PRIMARY KEY, node TEXT NOT NULL, vm_key TEXT NOT NULL)`,
];

/** SQLite (better-sqlite3), the embedded default. One writer: transactions are queued. */
export class SqliteStore implements Sql {
  private readonly db: Database.Database;
  private queue: Promise<unknown> = Promise.resolve();
  private inTx = false;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    for (const s of SCHEMA) this.db.exec(s);
  }

  all(sql: string, params: Param[] = []): Promise<Row[]> {
    return Promise.resolve(this.db.prepare(sql).all(...params) as Row[]);
  }

  run(sql: string, params: Param[] = []): Promise<number> {
    return Promise.resolve(this.db.prepare(sql).run(...params).changes);
  }

  /** better-sqlite3's transactions are synchronous; ours await, so they are serialised here. */
  tx<T>(fn: (q: Sql) => Promise<T>): Promise<T> {
    if (this.inTx) return fn(this);
    const run = async (): Promise<T> => {
      this.inTx = true;
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const r = await fn(this);
        this.db.exec('COMMIT');
        return r;
      } catch (err) {
        this.db.exec('ROLLBACK');
        throw err;
      } finally {
        this.inTx = false;
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  close(): Promise<void> {
    this.db.close();
    return Promise.resolve();
  }
}
