// The loader a cstrap accepts before anything else (thesis 8.2.3: the boot token
// pins the loader's checksum, and the cstrap refuses any other). For now the
// loader is a manifest naming the guest kernel this roam runs: the cstrap can
// only resume VMs whose kernel, stream format and WASM features it has itself.
import { createHash } from 'node:crypto';
import { WASM_FEATURES } from '../memory/features.js';
import { FORMAT_VERSION } from '../format/index.js';
import { KERNEL_VERSION } from '../guest/kernel.js';

export interface LoaderManifest {
  name: 'roam-guest-kernel';
  kernelVersion: string;
  format: number;
  features: readonly string[];
}

/** This roam's loader manifest, as canonical bytes (its hash is what tokens pin). */
export function loaderManifest(): Buffer {
  const m: LoaderManifest = {
    name: 'roam-guest-kernel',
    kernelVersion: KERNEL_VERSION,
    format: FORMAT_VERSION,
    features: WASM_FEATURES,
  };
  return Buffer.from(JSON.stringify(m), 'utf8');
}

export const loaderHash = (manifest: Uint8Array = loaderManifest()): string =>
  createHash('sha256').update(manifest).digest('hex');

/** Why this cstrap refuses an uploaded loader, or null if it accepts it. */
export function checkLoader(
  bytes: Buffer,
  pinnedHash: string | undefined,
  hostFeatures: readonly string[] = WASM_FEATURES,
): string | null {
  const hash = loaderHash(bytes);
  if (pinnedHash && hash !== pinnedHash.toLowerCase())
    return `loader hash ${hash.slice(0, 16)}… is not the pinned ${pinnedHash.slice(0, 16)}…`;
  let m: Partial<LoaderManifest>;
  try {
    m = JSON.parse(bytes.toString('utf8')) as Partial<LoaderManifest>;
  } catch {
    return 'the loader is not a roam loader manifest';
  }
  if (m.name !== 'roam-guest-kernel') return 'the loader is not a roam loader manifest';
  if (m.kernelVersion !== KERNEL_VERSION)
    return `the VM runs guest kernel ${String(m.kernelVersion)}; this host runs ${KERNEL_VERSION}`;
  if (m.format !== FORMAT_VERSION)
    return `the VM speaks stream format ${String(m.format)}; this host reads ${FORMAT_VERSION}`;
  const wanted: unknown[] = Array.isArray(m.features) ? m.features : [];
  const missing = wanted.map(String).filter((f) => !hostFeatures.includes(f));
  if (missing.length) return `this host lacks WASM feature(s) the VM needs: ${missing.join(', ')}`;
  return null;
}
