// The checkpoint signing key: 32 random bytes in a file only its owner can read.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { KEY_SIZE } from './records.js';
import { roamHome } from '../util/home.js';
import { RoamError } from '../util/errors.js';

/** `$ROAM_HOME/checkpoint.key`, ROAM_HOME defaulting to `~/.roam`. */
export function defaultKeyPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(roamHome(env), 'checkpoint.key');
}

/** Reads a key file: 32 raw bytes, or 64 hex digits (so a key can be pasted). */
export async function loadKey(path: string): Promise<Buffer> {
  let raw: Buffer;
  try {
    raw = await readBounded(path);
  } catch (e) {
    throw new RoamError(
      'unreadable-key',
      `cannot read checkpoint key ${path}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  return parseKey(path, raw);
}

/** A key file is tiny: read at most a little more than a hex key, so --key /dev/zero cannot fill memory. */
async function readBounded(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(KEY_SIZE * 2 + 3);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * loadKey without a trip through the thread pool: a VM that has just arrived reads
 * its key between the end of the stream and its first instruction, where every
 * millisecond is downtime. Null if the file cannot be read (create it with loadOrCreateKey).
 */
export function loadKeySync(path: string): Buffer | null {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch {
    return null;
  }
  return parseKey(path, raw);
}

function parseKey(path: string, raw: Buffer): Buffer {
  if (raw.length === KEY_SIZE) return raw;
  const text = raw.toString('latin1').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  throw new RoamError(
    'bad-key',
    `checkpoint key ${path} must hold ${KEY_SIZE} bytes (or ${KEY_SIZE * 2} hex digits), found ${raw.length} bytes`,
  );
}

export async function loadOrCreateKey(path: string): Promise<Buffer> {
  try {
    return await loadKey(path);
  } catch (e) {
    if ((e as { cause?: NodeJS.ErrnoException }).cause?.code !== 'ENOENT') throw e;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const key = randomBytes(KEY_SIZE);
  try {
    // 'wx': never overwrite a key another process created meanwhile.
    await writeFile(path, key, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return loadKey(path);
    throw new Error(`cannot create checkpoint key ${path}: ${(e as Error).message}`, { cause: e });
  }
  return key;
}

/** Writes a key given to this VM (mode 0600), e.g. by the node daemon. */
export async function saveKey(path: string, key: Buffer): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, key, { mode: 0o600 });
}
