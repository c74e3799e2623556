// --db FILE is SQLite; --db postgres://... is a PostgreSQL server that several
// control services may share.
import { SqliteStore, type Sql } from './store.js';
import { RoamError } from '../util/errors.js';

export async function openStore(db: string): Promise<Sql> {
  if (/^postgres(ql)?:\/\//.test(db)) {
    const { PgStore } = await import('./pg.js').catch(() => {
      throw new RoamError('no-pg', 'PostgreSQL support is not built into this roam', {
        kind: 'usage',
      });
    });
    return PgStore.open(db);
  }
  return new SqliteStore(db);
}
