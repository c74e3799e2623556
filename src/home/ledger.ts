// Home's ledger (SQLite): one row per migration it arbitrates. A decision is
// written exactly once (UPDATE ... WHERE decision IS NULL), in its own
// transaction, before anyone hears of it; whatever wins that write is the
// decision, for good, across restarts of home.
import Database from 'better-sqlite3';
import type { Decision } from '../migrate/protocol.js';

export interface MigrationRow {
  id: string;
  vm: string;
  dest: string;
  /** Wall clock (ms) of BEGIN, and the last moment a commit may be written. */
  begun_at: number;
  deadline: number;
  dest_ready_at: number | null;
  decision: Decision | null;
  decided_at: number | null;
  reason: string | null;
}

export class HomeLedger {
  readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // A decision must survive a crash of home the moment it has been announced.
    this.db.pragma('synchronous = FULL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS migrations (
      id TEXT PRIMARY KEY,
      vm TEXT NOT NULL,
      dest TEXT NOT NULL,
      begun_at INTEGER NOT NULL,
      deadline INTEGER NOT NULL,
      dest_ready_at INTEGER,
      decision TEXT CHECK (decision IN ('commit', 'abort')),
      decided_at INTEGER,
      reason TEXT
    )`);
  }

  get(id: string): MigrationRow | undefined {
    return this.db.prepare('SELECT * FROM migrations WHERE id = ?').get(id) as
      MigrationRow | undefined;
  }

  /** A new migration (false if the id is known already: a BEGIN is taken once). */
  begin(id: string, vm: string, dest: string, windowMs: number, now = Date.now()): boolean {
    const r = this.db
      .prepare(
        'INSERT OR IGNORE INTO migrations (id, vm, dest, begun_at, deadline) VALUES (?, ?, ?, ?, ?)',
      )
      .run(id, vm, dest, now, now + windowMs);
    return r.changes === 1;
  }

  destReady(id: string, now = Date.now()): void {
    this.db
      .prepare('UPDATE migrations SET dest_ready_at = ? WHERE id = ? AND dest_ready_at IS NULL')
      .run(now, id);
  }

  /**
   * Decide, once: the decision that stands afterwards (this one, or an earlier one).
   * A commit after the deadline is refused and written as an abort instead.
   */
  decide(id: string, want: Decision, reason: string, now = Date.now()): Decision {
    const tx = this.db.transaction((): Decision => {
      const row = this.get(id);
      if (!row) {
        // Unknown to us (never begun): it can only be an abort, recorded so that it stays one.
        this.db
          .prepare(
            "INSERT INTO migrations (id, vm, dest, begun_at, deadline, decision, decided_at, reason) VALUES (?, '?', '?', ?, ?, 'abort', ?, ?)",
          )
          .run(id, now, now, now, 'unknown migration');
        return 'abort';
      }
      if (row.decision) return row.decision;
      const d: Decision = want === 'commit' && now > row.deadline ? 'abort' : want;
      const why = d === want ? reason : 'commit asked after the window closed';
      this.db
        .prepare(
          'UPDATE migrations SET decision = ?, decided_at = ?, reason = ? WHERE id = ? AND decision IS NULL',
        )
        .run(d, now, why, id);
      return d;
    });
    return tx.immediate();
  }

  /** Undecided migrations (for timers after a restart). */
  undecided(): MigrationRow[] {
    return this.db
      .prepare('SELECT * FROM migrations WHERE decision IS NULL')
      .all() as MigrationRow[];
  }

  list(limit = 100): MigrationRow[] {
    return this.db
      .prepare('SELECT * FROM migrations ORDER BY begun_at DESC LIMIT ?')
      .all(limit) as MigrationRow[];
  }

  close(): void {
    this.db.close();
  }
}
