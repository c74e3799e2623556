// Reading a checkpoint file that a VM will be resumed from (or that is inspected).
import fs from 'node:fs';
import { defaultKeyPath, loadKey, readCheckpoint } from '../format/index.js';

/** Read and verify a checkpoint with --key, or the user's default key when there is one. */
export async function openCheckpoint(
  file: string,
  keyOption?: string,
): ReturnType<typeof readCheckpoint> {
  const keyPath = keyOption ?? defaultKeyPath();
  const key = keyOption || fs.existsSync(keyPath) ? await loadKey(keyPath) : undefined;
  return readCheckpoint(file, { key, allowUnsigned: !keyOption });
}
