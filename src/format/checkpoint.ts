// Reading a whole checkpoint into memory (restore, inspect), from a file of either
// format or from a stream arriving from anywhere.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { CheckpointAssembler, type Checkpoint } from './assemble.js';
import { CheckpointError } from './errors.js';
import { IMAGE_MAGIC } from './image.js';
import { readImage } from './image-read.js';
import { RecordDecoder, STREAM_MAGIC } from './records.js';

export { CheckpointError, type CheckpointErrorCode } from './errors.js';
export type { Checkpoint } from './assemble.js';

export interface ReadOptions {
  /** 32-byte HMAC key; required for signed checkpoints. */
  key?: Buffer;
  /** With a key, still accept an unsigned checkpoint (default: refuse it). */
  allowUnsigned?: boolean;
}

/**
 * Decodes a checkpoint stream. Records are parsed as they arrive, but nothing is
 * returned until END has been verified, so a caller never sees unauthenticated state.
 */
export async function decodeStream(
  chunks: AsyncIterable<Buffer | Uint8Array>,
  opts: ReadOptions = {},
): Promise<Checkpoint> {
  const dec = new RecordDecoder(opts);
  const asm = new CheckpointAssembler();
  for await (const c of chunks) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    for (const rec of dec.push(b)) asm.add(rec);
  }
  dec.finish();
  return asm.result('stream', dec.bytes, dec.signed);
}

/** Reads a checkpoint file, stream (ROAMSTRM) or image (ROAMIMG1), told apart by its magic. */
export async function readCheckpoint(path: string, opts: ReadOptions = {}): Promise<Checkpoint> {
  const magic = Buffer.alloc(8);
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CheckpointError(
      'unreadable',
      `cannot read checkpoint ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message}`,
    );
  }
  let n: number;
  try {
    ({ bytesRead: n } = await fh.read(magic, 0, 8, 0));
  } finally {
    await fh.close();
  }
  if (n === 8 && magic.equals(IMAGE_MAGIC)) return readImage(path, opts);
  if (n === 0) throw new CheckpointError('not-roam', `not a roam checkpoint: ${path} is empty`);
  if (!magic.subarray(0, n).equals(STREAM_MAGIC.subarray(0, n))) {
    throw new CheckpointError(
      'not-roam',
      `not a roam checkpoint: ${path} starts with neither ROAMSTRM nor ROAMIMG1`,
    );
  }
  return decodeStream(createReadStream(path, { highWaterMark: 1 << 20 }), opts);
}
