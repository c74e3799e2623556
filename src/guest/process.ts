// A guest process: one WASM program with its own linear memory, run in time slices.
// Its stack is unwound into linear memory (Asyncify) whenever it blocks or its slice
// ends, so between slices its whole state is memory + globals: what a checkpoint takes.
import type { FrameSpace } from '../memory/frames.js';
import type { PreparedModule } from '../wasm/prepare.js';
import { instantiationEffects } from '../wasm/segments.js';

export type Variant = 'plain' | 'tracked';
export type ProcStatus = 'new' | 'runnable' | 'blocked' | 'exited';

/** Thrown by proc_exit to leave the WASM stack. */
export class ProcExit extends Error {
  constructor(readonly code: number) {
    super(`proc_exit(${code})`);
  }
}

/** asyncify_get_state() while the stack is being unwound into memory. */
const ASYNCIFY_UNWINDING = 1;

interface AsyncifyExports {
  _start(): void;
  asyncify_start_unwind(addr: number): void;
  asyncify_stop_unwind(): void;
  asyncify_start_rewind(addr: number): void;
  asyncify_stop_rewind(): void;
  asyncify_get_state(): number;
}

export interface SavedProcess {
  virtPages: number;
  globals: Record<string, string>;
  /** The Asyncify buffer between its start and its fill pointer (base64), when unwound. */
  stack: string | null;
}

export class Process implements FrameSpace {
  status: ProcStatus = 'new';
  exitCode: number | null = null;
  /** Why the process is blocked: re-evaluated when it is rewound into the syscall. */
  wait: { until?: bigint; reason: string } | null = null;
  /** The wasm stack is saved in the Asyncify buffer (the process is between slices). */
  unwound = false;
  /** Set while rewinding, until the syscall that unwound is re-entered. */
  rewinding = false;
  variant: Variant = 'plain';
  /** Transient state of the syscall in progress (e.g. a connect under way); not checkpointed. */
  pending: unknown = null;
  /** Safepoint polls between trips into the kernel, per poll class, adapted to the program. */
  readonly fuelPerPoll = [1024, 1];
  readonly lastPoll = [0, 0];
  readonly memory: WebAssembly.Memory;
  private readonly instances: { plain: WebAssembly.Instance; tracked?: WebAssembly.Instance };
  private u8!: Uint8Array;
  private dv!: DataView;
  private bufferRef: ArrayBuffer | null = null;

  constructor(
    readonly pid: number,
    readonly slot: number,
    readonly argv: string[],
    readonly env: string[],
    readonly mod: PreparedModule,
    imports: (p: Process) => WebAssembly.Imports,
    maxPages?: number,
    /** A memory that already holds the program's pages (restore); grown here to the module's minimum, not clobbered by the data segments. */
    memory?: WebAssembly.Memory,
  ) {
    const { meta } = mod;
    const limit = Math.min(meta.maxPages, maxPages ?? meta.maxPages);
    if (memory) {
      const min = meta.initialPages + meta.regionPages;
      const have = memory.buffer.byteLength / 65536;
      if (have < min) memory.grow(min - have);
    }
    this.memory =
      memory ??
      new WebAssembly.Memory({
        initial: meta.initialPages + meta.regionPages,
        maximum: limit + meta.regionPages,
      });
    this.imports = imports(this);
    this.imports.roam = { ...this.imports.roam, memory: this.memory };
    const effects = instantiationEffects(mod.original);
    // A fresh process gets its data segments once; a restored memory keeps its pages.
    this.instances = { plain: this.instantiate(mod.plain, memory !== undefined) };
    // The tracked variant is instantiated when a checkpoint first needs it (that
    // halves the build of an arriving VM), unless instantiating runs a start function.
    if (effects.start) this.instances.tracked = this.instantiate(mod.tracked, true);
    // Otherwise it is instantiated as soon as its module is compiled in the background,
    // between two slices: at a checkpoint's start the new instance cost the programs'
    // thread a pause that a server's clients saw as their largest gap of a migration.
    else
      void mod.trackedCompiled?.then(() => {
        if (this.status !== 'exited') this.instance('tracked');
      });
  }

  private readonly imports: WebAssembly.Imports;

  /**
   * Instantiate a variant on the shared memory. Instantiating writes the active
   * data segments: with `keep`, the bytes under them are put back (a copy of those
   * bytes only; of the initial memory if their places are not known).
   */
  private instantiate(m: WebAssembly.Module, keep: boolean): WebAssembly.Instance {
    if (!keep) return new WebAssembly.Instance(m, this.imports);
    const u8 = new Uint8Array(this.memory.buffer);
    const ranges = instantiationEffects(this.mod.original).ranges ?? [
      [0, this.mod.meta.initialPages * 65536],
    ];
    const saved = ranges.map(([a, b]): [number, Uint8Array] => [
      a,
      u8.slice(a, Math.min(b, u8.length)),
    ]);
    const inst = new WebAssembly.Instance(m, this.imports);
    const now = new Uint8Array(this.memory.buffer);
    for (const [at, bytes] of saved) now.set(bytes, at);
    return inst;
  }

  private instance(v: Variant): WebAssembly.Instance {
    if (v === 'plain') return this.instances.plain;
    return (this.instances.tracked ??= this.instantiate(this.mod.tracked, true));
  }

  private get exports(): AsyncifyExports & Record<string, unknown> {
    return this.instance(this.variant).exports as unknown as AsyncifyExports &
      Record<string, unknown>;
  }

  /** Views of linear memory, refreshed when memory.grow replaced the buffer. */
  bytes(): Uint8Array {
    if (this.bufferRef !== this.memory.buffer) {
      this.bufferRef = this.memory.buffer;
      this.u8 = new Uint8Array(this.bufferRef);
      this.dv = new DataView(this.bufferRef);
    }
    return this.u8;
  }
  view(): DataView {
    this.bytes();
    return this.dv;
  }

  /** Pages the program can see (memory.size in wasm pages, without roam's region). */
  virtPages(): number {
    return this.memory.buffer.byteLength / 65536 - this.mod.meta.regionPages;
  }
  private regionStart(): number {
    return this.virtPages() * 65536;
  }
  private asyncifyAddr(): number {
    return this.regionStart() + this.mod.meta.asyncifyOffset;
  }

  // FrameSpace: the program's pages, and the dirty bitmap the write barrier keeps.
  pageCount(): number {
    return this.virtPages() * 16;
  }
  page(i: number): Uint8Array {
    return this.bytes().subarray(i * 4096, i * 4096 + 4096);
  }
  dirtyMap(): Uint8Array {
    const start = this.regionStart();
    return this.bytes().subarray(start, start + this.pageCount());
  }
  /** The kernel's own writes into program memory mark pages as the barrier would. */
  markDirty(addr: number, len: number): void {
    if (len <= 0) return;
    const map = this.dirtyMap();
    map.fill(1, addr >>> 12, ((addr + len - 1) >>> 12) + 1);
  }

  /**
   * Run one slice: start the program, or rewind it into the syscall it left from.
   * Returns when it unwinds (blocked or slice over) or exits.
   */
  runSlice(): void {
    const ex = this.exports;
    if (this.unwound) {
      this.rewinding = true;
      ex.asyncify_start_rewind(this.asyncifyAddr());
    }
    this.unwound = false;
    this.status = 'runnable';
    try {
      ex._start();
    } catch (err) {
      if (err instanceof ProcExit) return this.exit(err.code);
      this.rewinding = false;
      this.exit(134);
      throw err;
    }
    if (ex.asyncify_get_state() === ASYNCIFY_UNWINDING) {
      ex.asyncify_stop_unwind();
      this.unwound = true;
    } else {
      this.exit(0);
    }
  }

  private exit(code: number): void {
    this.status = 'exited';
    this.exitCode = code;
    this.wait = null;
  }

  /** Called first thing by a syscall that can unwind: finishes a rewind. */
  enterSyscall(): void {
    if (this.rewinding) {
      this.rewinding = false;
      this.exports.asyncify_stop_rewind();
    }
  }

  /** Unwind out of the current syscall; the scheduler sees the process between slices. */
  unwind(wait: Process['wait']): void {
    const addr = this.asyncifyAddr();
    const dv = this.view();
    dv.setUint32(addr, addr + 8, true);
    dv.setUint32(addr + 4, addr + this.mod.meta.asyncifyBytes, true);
    this.wait = wait;
    if (wait) this.status = 'blocked';
    this.exports.asyncify_start_unwind(addr);
  }

  setFuel(kind: number, n: number): void {
    (this.exports[kind === 0 ? 'roam_fuel' : 'roam_hfuel'] as WebAssembly.Global).value = n;
  }

  /** Switch variant between slices (only when unwound or not yet started). */
  switchTo(variant: Variant): void {
    if (variant === this.variant) return;
    if (this.status !== 'exited' && this.status !== 'new' && !this.unwound)
      throw new Error('internal error: variant switch outside a safepoint');
    const from = this.exports;
    this.variant = variant;
    const to = this.exports;
    // Numeric globals only (the module's mutable globals and roam's own): number or bigint.
    type NumGlobal = WebAssembly.Global<'i32' | 'i64' | 'f32' | 'f64'>;
    const names = [
      ...this.mod.meta.globals.map((g) => g.name),
      'roam_virt_pages',
      'roam_dirty_base',
    ];
    for (const n of names) (to[n] as NumGlobal).value = (from[n] as NumGlobal).value;
  }

  save(): SavedProcess {
    const ex = this.exports;
    const globals: Record<string, string> = {};
    for (const g of this.mod.meta.globals)
      globals[g.name] = String((ex[g.name] as WebAssembly.Global).value);
    let stack: string | null = null;
    if (this.unwound) {
      const addr = this.asyncifyAddr();
      const end = this.view().getUint32(addr, true);
      stack = Buffer.from(this.bytes().subarray(addr, end)).toString('base64');
    }
    return { virtPages: this.virtPages(), globals, stack };
  }

  /**
   * Load saved state into this freshly instantiated process. The caller has already
   * grown the memory to `virtPages` and copied the pages in.
   */
  load(s: SavedProcess): void {
    const ex = this.exports;
    for (const g of this.mod.meta.globals) {
      const type = g.type;
      (ex[g.name] as WebAssembly.Global).value =
        type === 'i64' ? BigInt(s.globals[g.name]) : Number(s.globals[g.name]);
    }
    (ex.roam_virt_pages as WebAssembly.Global).value = s.virtPages;
    (ex.roam_dirty_base as WebAssembly.Global).value = s.virtPages * 65536;
    if (s.stack) {
      const data = Buffer.from(s.stack, 'base64');
      const addr = this.asyncifyAddr();
      this.bytes().set(data, addr);
      this.unwound = true;
    }
  }

  /** Grow the raw memory so the program sees `virtPages` (used by restore only). */
  growTo(virtPages: number): void {
    const delta = virtPages - this.virtPages();
    if (delta > 0) this.memory.grow(delta);
  }
}
