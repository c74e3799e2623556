// What the page cleaner writes a checkpoint to: a stream sink (socket, queue, file)
// or a file in either format. File targets write beside the real name and rename
// only once complete, so a failed checkpoint never replaces an older good one.
import { lstatSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { CheckpointError } from './errors.js';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { ImageWriter } from './image.js';
import { type PageEntry, type SpaceSizes, type StreamHeader } from './stream.js';
import { StreamWriter, type Sink } from './writer.js';

export interface CheckpointTarget {
  begin(header: StreamHeader, modules: Buffer[]): Promise<void>;
  /** Page bytes are copied (or written) during the call, so live memory views may be passed. */
  pages(batch: PageEntry[]): Promise<void>;
  finish(spaces: SpaceSizes, kernel: Buffer, verify: Buffer): Promise<void>;
  abort(reason: Error): Promise<void>;
  /** Resolves once the receiver has everything written so far (a network target). */
  drain?(): Promise<void>;
  /** The frame spaces' sizes at the start of a round, so a receiver can size memories once. */
  sizes?(spaces: SpaceSizes): Promise<void>;
  readonly bytesWritten: number;
  /** A transport stream or an image: VERIFY counts pages as PRESENT, not by content (see verify.ts); something else covers their bytes. */
  readonly presenceVerify?: boolean;
}

/** A target writing the stream to `sink`; `writer` is exposed for targets built on it (compression, early SPACES). */
export function streamTarget(
  sink: Sink,
  opts: { key?: Buffer; transport?: boolean; what?: string; reuse?: boolean } = {},
): CheckpointTarget & { readonly writer: StreamWriter } {
  const w = new StreamWriter(sink, {
    key: opts.key,
    transport: opts.transport,
    reuse: opts.reuse,
  });
  let aborted: Error | undefined;
  const live = (): void => {
    if (aborted)
      throw new Error(`${opts.what ?? 'checkpoint'} aborted: ${aborted.message}`, {
        cause: aborted,
      });
  };
  return {
    writer: w,
    presenceVerify: opts.transport === true,
    async begin(header, modules) {
      live();
      await w.header(header);
      for (const m of modules) await w.module(m);
    },
    async pages(batch) {
      live();
      await w.pages(batch);
    },
    async finish(spaces, kernel, verify) {
      live();
      // Queue everything synchronously, then wait once: fewer turns, same order.
      await Promise.all([w.spaces(spaces), w.kernel(kernel), w.verify(verify), w.end()]);
    },
    abort(reason) {
      // A stream without END is refused by every reader; there is nothing to undo.
      aborted = reason;
      return Promise.resolve();
    },
    get bytesWritten() {
      return w.bytesWritten;
    },
  };
}

/** Wraps a file-system error with the path and what we were doing. */
function fsError(what: string, path: string, cause: unknown): Error {
  const msg = cause instanceof Error ? cause.message : String(cause);
  return new Error(`${what} ${path}: ${msg}`, { cause });
}

export function fileTarget(
  path: string,
  opts: { format: 'stream' | 'image'; key?: Buffer },
): CheckpointTarget {
  // The file is written aside and renamed over `path`: over a device or a FIFO
  // that would replace it (as root, /dev/null itself), so only a regular file or a
  // new name is taken.
  let st: Stats | undefined;
  try {
    st = lstatSync(path);
  } catch {
    // a new file
  }
  if (st && !st.isFile())
    throw new CheckpointError(
      'not-a-file',
      `${path} is ${st.isDirectory() ? 'a directory' : st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}: a checkpoint is written to a regular file (a new or an existing one)`,
    );
  const partial = `${path}.partial`;
  return opts.format === 'image'
    ? imageFileTarget(path, partial, opts.key)
    : streamFileTarget(path, partial, opts.key);
}

/** Shared life cycle of file targets: any failure removes the partial file. */
abstract class FileTargetBase implements CheckpointTarget {
  protected state: 'new' | 'open' | 'done' | 'failed' = 'new';
  constructor(
    protected readonly path: string,
    protected readonly partial: string,
  ) {}
  abstract get bytesWritten(): number;
  protected abstract doBegin(header: StreamHeader, modules: Buffer[]): Promise<void>;
  protected abstract doPages(batch: PageEntry[]): Promise<void>;
  /** Writes the tail and syncs/closes the partial file. */
  protected abstract doFinish(spaces: SpaceSizes, kernel: Buffer, verify: Buffer): Promise<void>;
  protected abstract closeQuietly(): Promise<void>;

  begin(header: StreamHeader, modules: Buffer[]): Promise<void> {
    if (this.state !== 'new')
      return Promise.reject(new Error(`checkpoint ${this.path}: begin() called twice`));
    this.state = 'open';
    return this.guard('writing checkpoint', () => this.doBegin(header, modules));
  }
  pages(batch: PageEntry[]): Promise<void> {
    return this.guard('writing checkpoint', () => this.doPages(batch), true);
  }
  async finish(spaces: SpaceSizes, kernel: Buffer, verify: Buffer): Promise<void> {
    await this.guard('writing checkpoint', () => this.doFinish(spaces, kernel, verify), true);
    try {
      await rename(this.partial, this.path);
    } catch (e) {
      await this.cleanup();
      throw fsError('renaming checkpoint onto', this.path, e);
    }
    this.state = 'done';
    await syncDir(dirname(this.path));
  }
  async abort(_reason: Error): Promise<void> {
    if (this.state === 'done') return;
    await this.cleanup();
  }

  private async guard(what: string, f: () => Promise<void>, needOpen = false): Promise<void> {
    if (needOpen && this.state !== 'open')
      throw new Error(
        `checkpoint ${this.path}: target is ${this.state === 'new' ? 'not begun' : this.state}`,
      );
    try {
      await f();
    } catch (e) {
      await this.cleanup();
      throw fsError(what, this.partial, e);
    }
  }

  private async cleanup(): Promise<void> {
    this.state = 'failed';
    await this.closeQuietly();
    await rm(this.partial, { force: true }).catch(() => undefined);
  }
}

async function syncDir(dir: string): Promise<void> {
  // Makes the rename durable; not possible on every platform, so best effort.
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* ignore */
  }
}

function streamFileTarget(
  path: string,
  partial: string,
  key: Buffer | undefined,
): CheckpointTarget {
  let fh: FileHandle | undefined;
  let position = 0;
  const writer = new StreamWriter(
    async (chunk) => {
      let at = 0;
      while (at < chunk.length) {
        const { bytesWritten } = await fh!.write(chunk, at, chunk.length - at, position);
        at += bytesWritten;
        position += bytesWritten;
      }
    },
    { key, reuse: true }, // each chunk is written before the next is encoded
  );
  class T extends FileTargetBase {
    get bytesWritten(): number {
      return writer.bytesWritten;
    }
    protected async doBegin(header: StreamHeader, modules: Buffer[]): Promise<void> {
      fh = await open(partial, 'w');
      await writer.header(header);
      for (const m of modules) await writer.module(m);
    }
    protected async doPages(batch: PageEntry[]): Promise<void> {
      await writer.pages(batch);
    }
    /** SPACES before the pages too (the final one still ends the stream): a restore sizes each memory once. */
    async sizes(spaces: SpaceSizes): Promise<void> {
      if (this.state !== 'open') throw new Error(`checkpoint ${this.path}: target is not open`);
      await writer.spaces(spaces);
    }
    protected async doFinish(spaces: SpaceSizes, kernel: Buffer, verify: Buffer): Promise<void> {
      await Promise.all([
        writer.spaces(spaces),
        writer.kernel(kernel),
        writer.verify(verify),
        writer.end(),
      ]);
      await fh!.sync();
      const f = fh!;
      fh = undefined;
      await f.close();
    }
    protected async closeQuietly(): Promise<void> {
      const f = fh;
      fh = undefined;
      await writer.flush().catch(() => undefined);
      await f?.close().catch(() => undefined);
    }
  }
  return new T(path, partial);
}

function imageFileTarget(path: string, partial: string, key: Buffer | undefined): CheckpointTarget {
  let img: ImageWriter | undefined;
  let header: StreamHeader | undefined;
  let modules: Buffer[] = [];
  class T extends FileTargetBase {
    // Pages are authenticated in chunks by the image's tags, so VERIFY counts them by presence.
    readonly presenceVerify = true;
    get bytesWritten(): number {
      return img?.bytesWritten ?? 0;
    }
    protected async doBegin(h: StreamHeader, m: Buffer[]): Promise<void> {
      // The image keeps HEADER and MODULEs in its trailing metadata.
      header = h;
      modules = m;
      img = await ImageWriter.create(partial, { key });
    }
    /** The last batch's writes: one batch is written while the cleaner prepares the next. */
    private inflight: Promise<void> = Promise.resolve();
    protected async doPages(batch: PageEntry[]): Promise<void> {
      const p = img!.writePages(batch);
      p.catch(() => undefined); // the writer keeps the failure: the next call or finish throws it
      const prev = this.inflight;
      this.inflight = p;
      await prev;
    }
    protected async doFinish(spaces: SpaceSizes, kernel: Buffer, verify: Buffer): Promise<void> {
      await this.inflight;
      await img!.finish({ header: header!, modules, spaces, kernel, verify });
    }
    protected async closeQuietly(): Promise<void> {
      await img?.abort().catch(() => undefined);
    }
  }
  return new T(path, partial);
}
