// A cstrap that boots from a boot URI (thesis 8.3.2): instead of listening, it
// opens the connection itself, to a VM serving itself there, and pulls the
// loader and the VM through it. The source never connects to this host. After
// the HTTP upgrade the arrival is a pushed one's: stream, READY, the decision.
import { pullSocket } from '../migrate/http-pull.js';
import { arrive, type Arrival, type CstrapOptions } from './cstrap.js';

export async function pullVm(
  uri: string,
  o: Omit<CstrapOptions, 'listen' | 'psk'> & { psk: Buffer },
): Promise<Arrival> {
  const sock = await pullSocket(uri);
  o.log(`pulling from ${uri}`);
  const key = { psk: o.psk, loaderHash: o.loaderHash };
  return arrive(
    { ...o, listen: { host: '', port: 0 } },
    sock,
    uri,
    () => Promise.resolve(key),
    () => undefined,
  );
}
