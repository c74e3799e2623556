// The ledger's schema, as an append-only list of migrations; the database's
// user_version says how many have been applied. Never edit a released step.
import type Database from 'better-sqlite3';

const MIGRATIONS: string[] = [
  `CREATE TABLE nodes (
     id TEXT PRIMARY KEY,
     secret BLOB NOT NULL,             -- shared with the node; signs its boot tokens and certificates
     price INTEGER NOT NULL CHECK (price >= 0), -- money per unit
     created INTEGER NOT NULL);
   CREATE TABLE customers (
     id TEXT PRIMARY KEY,
     balance INTEGER NOT NULL CHECK (balance >= 0),
     created INTEGER NOT NULL);
   CREATE TABLE jobs (
     id TEXT PRIMARY KEY,              -- hex of the 16-byte job id in the boot token
     customer TEXT NOT NULL REFERENCES customers(id),
     node TEXT NOT NULL REFERENCES nodes(id),
     seed BLOB NOT NULL,               -- s_0: never leaves the broker
     length INTEGER NOT NULL,          -- n: the anchor is f^n(s_0)
     released INTEGER NOT NULL,        -- units sold so far: the customer holds s_{n-released}
     price INTEGER NOT NULL,           -- money per unit when bought, used for refunds
     expiry INTEGER NOT NULL,
     created INTEGER NOT NULL,
     CHECK (released <= length));
   CREATE TABLE redemptions (
     cert_id TEXT PRIMARY KEY,
     job TEXT NOT NULL UNIQUE REFERENCES jobs(id), -- one refund per job, whatever the node signs
     units INTEGER NOT NULL,
     amount INTEGER NOT NULL,
     at INTEGER NOT NULL);
   CREATE TABLE ledger (              -- every money movement, for audit
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     customer TEXT NOT NULL REFERENCES customers(id),
     delta INTEGER NOT NULL,
     kind TEXT NOT NULL,               -- deposit | buy | topup | refund
     job TEXT,
     at INTEGER NOT NULL);`,
  // Issue 13: credentials, stored as SHA-256 of 32 random bytes (auth.ts).
  `CREATE TABLE keys (
     role TEXT NOT NULL CHECK (role IN ('admin', 'customer')),
     id TEXT NOT NULL,
     hash BLOB NOT NULL,
     created INTEGER NOT NULL,
     PRIMARY KEY (role, id));`,
];

export function migrate(db: Database.Database): number {
  const from = db.pragma('user_version', { simple: true }) as number;
  if (from > MIGRATIONS.length)
    throw new Error(`ledger schema ${from} is newer than this broker (${MIGRATIONS.length})`);
  for (let v = from; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return MIGRATIONS.length;
}
