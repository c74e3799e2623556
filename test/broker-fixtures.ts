// A broker on a real SQLite file in a temp dir. `client` acts as the admin
// (its credential from the file the first start wrote); `customer(id)` creates
// an account and returns a client acting as that customer.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker } from '../src/broker/server.js';
import { BrokerClient } from '../src/broker/client.js';

export async function broker(o: { chainLength?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'roam-broker-'));
  const db = join(dir, 'ledger.db');
  const server = await startBroker({ db, chainLength: o.chainLength ?? 200 });
  const adminKey = readFileSync(server.adminKeyFile, 'utf8').trim();
  const client = new BrokerClient(server.url, adminKey);
  return {
    server,
    client,
    adminKey,
    db,
    dir,
    async customer(id: string, balance = 0): Promise<BrokerClient> {
      return client.as((await client.addCustomer(id, balance)).key);
    },
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
