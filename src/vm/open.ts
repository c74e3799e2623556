// Reading a checkpoint file that a VM will be resumed from (or that is inspected).
import fs from 'node:fs';
import {
  CheckpointError,
  defaultKeyPath,
  loadKey,
  readCheckpoint,
  type ReadOptions,
} from '../format/index.js';

/**
 * Read and verify a checkpoint with --key, or the user's default key when there is one.
 * A file without a valid MAC under that key is refused unless `allowUnsigned` (issue 13:
 * anyone can write an unsigned file, and restoring one runs their program with your folders).
 */
export async function openCheckpoint(
  file: string,
  keyOption?: string,
  allowUnsigned = false,
): ReturnType<typeof readCheckpoint> {
  return readCheckpoint(file, await checkpointReadOptions(file, keyOption, allowUnsigned));
}

/** The key (and whether unsigned files are accepted) to read `file` with; see openCheckpoint. */
export async function checkpointReadOptions(
  file: string,
  keyOption?: string,
  allowUnsigned = false,
): Promise<ReadOptions> {
  const keyPath = keyOption ?? defaultKeyPath();
  const key = keyOption || fs.existsSync(keyPath) ? await loadKey(keyPath) : undefined;
  if (!key && !allowUnsigned)
    throw new CheckpointError(
      'unsigned',
      `no key to check ${file} with (${keyPath} does not exist): a signed checkpoint needs --key FILE; --allow-unsigned accepts a file anyone could have written`,
    );
  return { key, allowUnsigned };
}
