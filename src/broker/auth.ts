// Who is asking the broker. Every request carries `Authorization: Bearer
// ROLE:ID:SECRET`: the admin's (created on first start, written to a 0600 file)
// or a customer's (issued once by add-customer). The broker keeps only the
// SHA-256 of each secret: they are 32 random bytes, so a plain hash cannot be
// reversed by guessing, and a stolen ledger holds no usable credential.
import type Database from 'better-sqlite3';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { BrokerError } from './errors.js';

export type Role = 'admin' | 'customer';
export interface Principal {
  role: Role;
  id: string;
}

const sha = (s: string) => createHash('sha256').update(s).digest();
const FORM = /^(admin|customer):([A-Za-z0-9._-]{1,64}):([0-9a-f]{64})$/;

/** Issues a fresh credential for ROLE:ID, replacing any earlier one; returns the only copy. */
export function issueKey(db: Database.Database, role: Role, id: string, now: number): string {
  const secret = randomBytes(32).toString('hex');
  db.prepare('INSERT OR REPLACE INTO keys (role, id, hash, created) VALUES (?, ?, ?, ?)').run(
    role,
    id,
    sha(secret),
    now,
  );
  return `${role}:${id}:${secret}`;
}

export function authenticate(db: Database.Database, header: string | undefined): Principal {
  const m = FORM.exec(/^Bearer (\S+)$/.exec(header ?? '')?.[1] ?? '');
  const row =
    m &&
    (db.prepare('SELECT hash FROM keys WHERE role = ? AND id = ?').get(m[1], m[2]) as
      { hash: Buffer } | undefined);
  if (!m || !row || !timingSafeEqual(row.hash, sha(m[3])))
    throw new BrokerError(
      401,
      'unauthenticated',
      'missing or wrong credential: pass --admin-key FILE (operator) or --customer-key FILE (customer)',
    );
  return { role: m[1] as Role, id: m[2] };
}

/** The admin credential, created with the ledger: written once to `file` (0600), never shown again. */
export function ensureAdmin(db: Database.Database, file: string, now: number): boolean {
  if (db.prepare("SELECT 1 FROM keys WHERE role = 'admin'").get()) return false;
  if (existsSync(file))
    throw new BrokerError(
      409,
      'admin-key-exists',
      `${file} exists but this ledger has no admin key: move it away so a new one can be written`,
    );
  // One transaction: a file that cannot be written leaves no admin key behind.
  db.transaction(() => {
    writeFileSync(file, `${issueKey(db, 'admin', 'admin', now)}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600); // whatever the umask
  })();
  return true;
}
