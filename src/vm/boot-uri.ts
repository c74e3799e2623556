// A cstrap told where to pull from (thesis 8.3.2: "the firmware is started with
// the boot URI as argument"). Whoever holds the cstrap's key may, instead of
// uploading a VM, send BOOT_URI on the upload channel: the cstrap then connects
// out and pulls, so the VM's source never has to reach this host. Two kinds:
//   vm     a running VM serving itself (a pull migration: exactly-once as a push)
//   image  a boot image (a signed checkpoint file) served by anyone who has it;
//          the cstrap checks its pinned hash and its MAC, may serve it on
//          (hypercube boot, thesis 8.4), and runs a fresh VM from it.
// The upload channel hears HAVE (image in and verified), then STARTED, or
// REFUSE with the reason.
import { connectChannel, type Channel } from '../migrate/channel.js';
import { parseHostPort } from '../util/address.js';
import { RoamError } from '../util/errors.js';
import { decodeStream, type Checkpoint } from '../format/index.js';
import { pullImage, serveImage } from '../migrate/image-pull.js';
import { json, Msg, parseBootUri, wallNow, type BootUri, type Have } from '../migrate/protocol.js';
import { restoreVm } from '../checkpoint/restore.js';
import { newVmId } from '../guest/kernel.js';
import { mib } from '../util/units.js';
import type { Arrival, CstrapOptions } from './cstrap.js';
import { pullVm } from './pull.js';

/**
 * The image to decodeStream in 1 MiB slices, a turn of the event loop between them:
 * decoded in one piece, a large image would block this process for long enough
 * (on a loaded host, seconds) that its channels' keepalives stop.
 */
async function* slices(b: Buffer): AsyncIterable<Buffer> {
  for (let at = 0; at < b.length; at += 1 << 20) {
    yield b.subarray(at, at + (1 << 20));
    await new Promise((r) => setImmediate(r));
  }
}

type Key = { psk: Buffer; loaderHash?: string };

/** Serve on for at most this long when nobody lets go (a coordinator that vanished without a FIN). */
const SERVE_MAX_MS = 10 * 60_000;

export async function bootFromUri(
  o: CstrapOptions,
  upload: Channel,
  payload: Buffer,
  key: Key,
): Promise<Arrival> {
  try {
    const req = parseBootUri(payload);
    o.log(`told to boot from ${req.uri} (${req.kind})`);
    if (req.kind === 'vm') {
      const a = await pullVm(req.uri, { ...o, psk: key.psk, loaderHash: key.loaderHash });
      // Whoever told us hears STARTED too.
      return { ...a, resolvers: [...a.resolvers, upload] };
    }
    return await bootImage(o, upload, req, key);
  } catch (e) {
    const reason = (e as Error).message;
    await Promise.race([
      upload.send(Msg.REFUSE, json({ reason })).catch(() => undefined),
      new Promise((r) => setTimeout(r, 200)),
    ]);
    upload.destroy();
    throw e;
  }
}

async function bootImage(
  o: CstrapOptions,
  upload: Channel,
  req: BootUri,
  key: Key,
): Promise<Arrival> {
  const t0 = performance.now();
  let cp: Checkpoint | undefined;
  const { image, sha256 } = await pullImage(req.uri, {
    psk: key.psk,
    loaderHash: key.loaderHash,
    features: o.features,
    sha256: req.sha256,
    // The image's own MAC (the key it was packed under): decoded whole before anything is built.
    verify: async (img) => void (cp = await decodeStream(slices(img), { key: key.psk })),
  });
  const endAt = wallNow();
  const pullMs = performance.now() - t0;
  o.log(
    `pulled ${mib(image.length)} from ${req.uri} in ${(pullMs / 1000).toFixed(2)} s; hash and MAC verified`,
  );
  const serving = req.serve
    ? await serveImage({
        listen: req.serve,
        psk: key.psk,
        image,
        onServed: (s) => o.log(`served the image to ${s.to} (${mib(s.bytes)})`),
        onRefused: (from, why) => o.log(`serving the image to ${from} failed: ${why}`),
      })
    : undefined;
  const have: Have = { sha256, bytes: image.length, serving: serving?.uri ?? null, pullMs };
  await upload.send(Msg.HAVE, json(have));
  // A fresh VM from the image: a new id, so that N copies on one host are N VMs.
  const kernel = await restoreVm(cp!, { ...o.kernel, vmId: newVmId() });
  const builtAt = wallNow();
  return {
    kernel,
    header: cp!.header,
    channel: upload,
    from: req.uri,
    bytes: image.length,
    times: { endAt, verifiedAt: endAt, builtAt },
    resolvers: [],
    serving,
  };
}

/**
 * An image VM serves on until whoever told it to pull ends the upload channel (or
 * goes, or SERVE_MAX_MS pass); its programs may finish first, and then the
 * process's exit waits for that.
 */
export function holdWhileServing(a: Arrival): void {
  const server = a.serving;
  if (!server) return;
  let exit: number | null = null;
  let open = true;
  const prev = a.kernel.opts.onExit;
  a.kernel.opts.onExit = (code) => (open ? (exit = code) : prev?.(code));
  const stop = (): void => {
    if (!open) return;
    open = false;
    clearTimeout(timer);
    server.close();
    if (exit !== null) prev?.(exit);
  };
  const timer = setTimeout(stop, SERVE_MAX_MS);
  timer.unref();
  // The coordinator's end of the upload channel (it ends ours after STARTED): its FIN lets go.
  const drain = async (): Promise<void> => {
    while (await a.channel.next()) {
      /* nothing more is expected; whatever comes is ignored */
    }
  };
  drain().then(stop, stop);
}

/**
 * The other end: tell the cstrap at `to` (over its upload channel, with its key) to
 * pull a VM from `uri`. Resolves once it runs there (STARTED); its REFUSE is thrown.
 */
export async function tellCstrap(to: string, psk: Buffer, uri: string): Promise<void> {
  const { host, port } = parseHostPort(to);
  const ch = await connectChannel(host, port, { psk, timeoutMs: 10_000 });
  try {
    await ch.send(Msg.BOOT_URI, json({ uri, kind: 'vm' } satisfies BootUri));
    const m = await ch.next();
    if (m?.type === Msg.STARTED) return;
    const why =
      m?.type === Msg.REFUSE ? m.payload.toString('utf8') : `message ${m?.type ?? 'none'}`;
    throw new RoamError('pull-refused', `${to} could not pull the VM from ${uri}: ${why}`, {
      kind: 'peer',
    });
  } finally {
    ch.destroy();
  }
}
