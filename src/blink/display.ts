// One VM's display in the viewer: its versioned shared objects uploaded to GL,
// its procedures checked and compiled (or, for the reference, interpreted), its
// registers, and the callbacks of Table 9.1 run when they are due. The display is
// a cache of the VM's state (9.1.8): `load` rebuilds all of it from a snapshot of
// the VM's procedures and objects, with no guest code run, and a frame is drawn
// only once every object of the snapshot is in place.
import { check, type CheckedProc } from './check.js';
import { interpret, type Env } from './interp.js';
import { compile, type Compiled } from './jit.js';
import { BlinkRefusal, EXTERNAL, ObjType, REGISTERS, type Callback } from './ops.js';
import { GlRuntime, type Gl } from './runtime.js';
import { procOf, validateObject, type BlinkObject, type BlinkState } from './wire.js';

export type ExecMode = 'jit' | 'interp';

interface Proc {
  id: number;
  checked: CheckedProc;
  fn: Compiled | null;
}

export interface Refusal {
  id: number;
  code: string;
  message: string;
}

const X = Object.fromEntries(EXTERNAL.map((n, i) => [n, i])) as Record<
  (typeof EXTERNAL)[number],
  number
>;

export interface InputEvent {
  /** 1 move, 2 down, 3 up, 4 key down, 5 key up (as the `event` external). */
  kind: number;
  x?: number;
  y?: number;
  buttons?: number;
  key?: number;
}

export class Display {
  readonly rt: GlRuntime;
  readonly env: Env;
  private readonly versions = new Map<number, number>();
  private readonly procs = new Map<Callback, Proc>();
  readonly refusals: Refusal[] = [];
  private inited = false;
  private updates = 0;
  private readonly t0: number;

  constructor(
    gl: Gl,
    readonly mode: ExecMode = 'jit',
    private readonly now: () => number = () => performance.now() / 1000,
  ) {
    this.rt = new GlRuntime(gl);
    this.env = {
      r: new Float64Array(REGISTERS),
      x: new Float64Array(EXTERNAL.length),
      rt: this.rt,
    };
    this.t0 = now();
  }

  /** The window the VM draws in (canvas pixels); runs reshape() when it changes. */
  resize(x: number, y: number, w: number, h: number): void {
    const win = this.rt.win;
    if (win.x === x && win.y === y && win.w === w && win.h === h) return;
    this.rt.win = { x, y, w, h };
    this.env.x[X.width] = w;
    this.env.x[X.height] = h;
    if (this.inited) this.run('reshape');
  }

  /** Display state recovery: drop everything, rebuild from the snapshot, run init and reshape. */
  load(s: BlinkState): void {
    for (const id of this.versions.keys()) this.rt.drop(id);
    this.versions.clear();
    this.procs.clear();
    this.refusals.length = 0;
    this.env.r.fill(0);
    s.regs.slice(0, REGISTERS).forEach((v, i) => (this.env.r[i] = Number(v) || 0));
    for (const o of s.objects) this.object(o, false);
    this.updates = s.updates;
    this.inited = true;
    this.run('init');
    this.run('reshape');
  }

  /** A new or changed object; an older or equal version than the one held is ignored. */
  object(o: BlinkObject, live = true): void {
    const held = this.versions.get(o.id);
    if (held !== undefined && held >= o.version) return;
    try {
      validateObject(o);
      this.place(o);
    } catch (e) {
      if (!(e instanceof BlinkRefusal)) throw e;
      this.refusals.push({ id: o.id, code: e.code, message: e.message });
      return;
    }
    this.versions.set(o.id, o.version);
    const cb = o.type === ObjType.PROC ? procOf(o).callback : null;
    if (live && cb === 'init') this.run('init');
    if (live && (cb === 'init' || cb === 'reshape')) this.run('reshape');
  }

  private place(o: BlinkObject): void {
    if (o.type === ObjType.PROC) {
      const { callback, code } = procOf(o);
      const checked = check(code, callback); // throws on a refusal: the old one stays
      this.rt.drop(o.id);
      for (const [cb, p] of this.procs) if (p.id === o.id) this.procs.delete(cb);
      this.procs.set(callback, {
        id: o.id,
        checked,
        fn: this.mode === 'jit' ? compile(checked) : null,
      });
    } else {
      for (const [cb, p] of this.procs) if (p.id === o.id) this.procs.delete(cb);
      if (o.type === ObjType.BUFFER) this.rt.setBuffer(o.id, o.data);
      else this.rt.setTexture(o.id, o.data);
    }
  }

  remove(id: number): void {
    this.rt.drop(id);
    this.versions.delete(id);
    for (const [cb, p] of this.procs) if (p.id === id) this.procs.delete(cb);
  }

  setRegs(first: number, values: number[]): void {
    values.forEach((v, i) => {
      if (first + i < REGISTERS) this.env.r[first + i] = Number(v) || 0;
    });
  }

  /** The VM asked for update() (its count of requests grew). */
  update(count: number): void {
    if (count <= this.updates) return;
    this.updates = count;
    this.run('update');
  }

  input(e: InputEvent): void {
    const x = this.env.x;
    x[X.event] = e.kind;
    if (e.x !== undefined) x[X.pointer_x] = e.x;
    if (e.y !== undefined) x[X.pointer_y] = e.y;
    if (e.buttons !== undefined) x[X.buttons] = e.buttons;
    if (e.key !== undefined && e.kind === 4) x[X.key] = e.key;
    this.run('input');
    x[X.event] = 0;
  }

  /** One frame: redraw(), with the time and frame count set. False if there is nothing to draw. */
  frame(): boolean {
    if (!this.inited || !this.procs.has('redraw')) return false;
    this.env.x[X.time] = this.now() - this.t0;
    this.run('redraw');
    this.env.x[X.frame]++;
    return true;
  }

  has(cb: Callback): boolean {
    return this.procs.has(cb);
  }

  private run(cb: Callback): void {
    const p = this.procs.get(cb);
    if (!p) return;
    this.rt.begin();
    if (p.fn) p.fn(this.env.r, this.env.x, this.rt, this.rt.gl);
    else interpret(p.checked, this.env);
  }
}
