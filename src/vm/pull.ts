// A cstrap that boots from a boot URI (thesis 8.3.2): instead of listening, it
// opens the connection itself, to a VM serving itself there, and pulls the
// loader and the VM through it. The source never connects to this host.
import { pullChannel } from '../migrate/http-pull.js';
import { receiveVm } from '../migrate/receiver.js';
import type { Arrival, CstrapOptions } from './cstrap.js';
import { warmControl } from './control.js';

export async function pullVm(
  uri: string,
  o: Omit<CstrapOptions, 'listen' | 'psk'> & { psk: Buffer },
): Promise<Arrival> {
  const channel = await pullChannel(uri, o.psk);
  o.log(`pulling from ${uri}`);
  const t0 = performance.now();
  const got = await receiveVm(channel, {
    ...o,
    onProgress: (m) => o.log(m),
    onHeader: warmControl,
  });
  o.log(
    `received ${(got.bytes / 1048576).toFixed(1)} MiB from ${uri} in ${((performance.now() - t0) / 1000).toFixed(2)} s; verified`,
  );
  return { ...got, channel, from: uri };
}
