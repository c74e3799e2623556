// A broker on a real SQLite file in a temp dir, with one node and one customer.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker } from '../src/broker/server.js';
import { BrokerClient } from '../src/broker/client.js';

export async function broker(o: { chainLength?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'roam-broker-'));
  const db = join(dir, 'ledger.db');
  const server = await startBroker({ db, chainLength: o.chainLength ?? 200 });
  const client = new BrokerClient(server.url);
  return {
    server,
    client,
    db,
    dir,
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
