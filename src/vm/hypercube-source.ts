// The source of a boot image: `roam serve-image`. It checks the image before it
// serves it (a file that does not verify under the key is refused here, not by
// every puller), then serves it until stopped or until it has sent `copies`.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { defaultKeyPath, loadKey, loadOrCreateKey } from '../format/index.js';
import { serveImage, type Served } from '../migrate/image-pull.js';
import { openCheckpoint } from './open.js';

export interface Totals {
  copies: number;
  bytesSent: number;
}

export async function serveImageFile(
  file: string,
  o: {
    listen: string;
    keyFile?: string;
    copies?: number;
    maxBandwidth?: number;
    onServed?: (s: Served) => void;
    onRefused?: (from: string, why: string) => void;
    onEnd?: (t: Totals) => void;
  },
): Promise<{ uri: string; sha256: string; bytes: number }> {
  await openCheckpoint(file, o.keyFile);
  const psk = o.keyFile ? await loadKey(o.keyFile) : await loadOrCreateKey(defaultKeyPath());
  const image = fs.readFileSync(file);
  const server = await serveImage({
    listen: o.listen,
    psk,
    image,
    maxBandwidth: o.maxBandwidth,
    onServed: (s) => {
      o.onServed?.(s);
      if (o.copies !== undefined && server.copies >= o.copies) end(0);
    },
    onRefused: o.onRefused,
  });
  const end = (code: number): void => {
    server.close();
    o.onEnd?.({ copies: server.copies, bytesSent: server.bytesSent });
    process.exit(code);
  };
  process.once('SIGTERM', () => end(0));
  process.once('SIGINT', () => end(0));
  return {
    uri: server.uri,
    sha256: createHash('sha256').update(image).digest('hex'),
    bytes: image.length,
  };
}
