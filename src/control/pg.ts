// The control service's tables in a PostgreSQL server (`pg`), so that several
// control services can share them: every change runs in a SERIALIZABLE
// transaction, retried when PostgreSQL reports a conflict with another service.
import pg from 'pg';
import { SCHEMA, type Param, type Row, type Sql } from './store.js';

/** ? placeholders (the SQLite form) to $1, $2, ... */
const numbered = (sql: string): string => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
};

class PgQuery implements Sql {
  constructor(protected readonly c: pg.Pool | pg.PoolClient) {}
  async all(sql: string, params: Param[] = []): Promise<Row[]> {
    return (await this.c.query(numbered(sql), params)).rows as Row[];
  }
  async run(sql: string, params: Param[] = []): Promise<number> {
    return (await this.c.query(numbered(sql), params)).rowCount ?? 0;
  }
  tx<T>(fn: (q: Sql) => Promise<T>): Promise<T> {
    return fn(this); // already inside one
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

export class PgStore extends PgQuery {
  static async open(url: string): Promise<PgStore> {
    const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 10_000 });
    const s = new PgStore(pool);
    // Two services starting at once must not both create the tables.
    const c = await pool.connect();
    try {
      await c.query('SELECT pg_advisory_lock(7501)');
      for (const t of SCHEMA) await c.query(t.replace('at INTEGER', 'at BIGINT'));
    } finally {
      await c.query('SELECT pg_advisory_unlock(7501)').catch(() => undefined);
      c.release();
    }
    return s;
  }

  private get pool(): pg.Pool {
    return this.c as pg.Pool;
  }

  override async tx<T>(fn: (q: Sql) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const c = await this.pool.connect();
      try {
        await c.query('BEGIN ISOLATION LEVEL SERIALIZABLE');
        const r = await fn(new PgQuery(c));
        await c.query('COMMIT');
        return r;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        const code = (err as { code?: string }).code;
        // 40001: serialization failure, 40P01: deadlock; another control service won: try again.
        if ((code === '40001' || code === '40P01') && attempt < 20) {
          await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * (attempt + 1)));
          continue;
        }
        throw err;
      } finally {
        c.release();
      }
    }
  }

  override close(): Promise<void> {
    return this.pool.end();
  }
}
