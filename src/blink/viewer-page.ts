// The viewer, in the user's browser: the trusted display server of thesis 9.1. It
// gets a VM's procedures and objects through a transport, checks and compiles
// them (display.ts), and draws with WebGL2 every frame whatever the VM is doing:
// while the VM migrates or is restored, the procedures run on and the picture
// keeps moving. When the transport comes back it sends the VM's whole display
// state and the display is rebuilt from it (9.1.8) in one task, so no frame shows
// a half-built display. It never runs the guest's code, only checked BlinkGL.
import { Display, type ExecMode, type InputEvent } from './display.js';
import type { ViewerMessage } from './messages.js';
import { objFromWire, type BlinkState } from './wire.js';

export type { ViewerMessage };

/** How the viewer reaches a VM: the local viewer server's SSE, or (later) home's session. */
export interface ViewerTransport {
  connect(onMessage: (m: ViewerMessage) => void, onDown: () => void): void;
  input(e: InputEvent): void;
}

/** Server-sent events from the page's own server, input posted back to it. */
export class SseTransport implements ViewerTransport {
  constructor(private readonly base = '') {}
  connect(onMessage: (m: ViewerMessage) => void, onDown: () => void): void {
    const es = new EventSource(`${this.base}/events`);
    es.onmessage = (e: MessageEvent<string>) => onMessage(JSON.parse(e.data) as ViewerMessage);
    es.onerror = () => onDown(); // EventSource reconnects by itself
  }
  input(e: InputEvent): void {
    void fetch(`${this.base}/input`, { method: 'POST', body: JSON.stringify(e) }).catch(() => {});
  }
}

/** What the page exposes for tests and the benchmark (window.blink). */
export interface ViewerStatus {
  connected: boolean;
  loads: number;
  epoch: string;
  frames: number;
  /** Frame times (ms, performance.now) of the last frames drawn. */
  frameTimes: number[];
  refusals: { id: number; code: string; message: string }[];
  /** performance.now() when the transport last went down and came back. */
  downAt: number[];
  upAt: number[];
  /** When the display was last rebuilt from a whole state, and how long that took (ms). */
  loadedAt: number;
  loadMs: number;
}

export class Viewer {
  readonly display: Display;
  readonly status: ViewerStatus = {
    connected: false,
    loads: 0,
    epoch: '',
    frames: 0,
    frameTimes: [],
    refusals: [],
    downAt: [],
    upAt: [],
    loadedAt: 0,
    loadMs: 0,
  };
  /** The last whole state received (the benchmark draws it other ways). */
  last: BlinkState | null = null;
  private ready = false;

  constructor(
    readonly gl: WebGL2RenderingContext,
    private readonly transport: ViewerTransport,
    mode: ExecMode,
  ) {
    this.display = new Display(gl, mode);
  }

  start(): void {
    this.transport.connect(
      (m) => this.message(m),
      () => this.down(),
    );
  }

  private down(): void {
    if (!this.status.connected) return;
    this.status.connected = false;
    this.status.downAt.push(performance.now());
  }

  private message(m: ViewerMessage): void {
    const d = this.display;
    try {
      if (m.t === 'state') {
        const t0 = performance.now();
        this.last = { objects: m.objects.map(objFromWire), regs: m.regs, updates: m.updates };
        d.load(this.last);
        this.status.loadedAt = performance.now();
        this.status.loadMs = this.status.loadedAt - t0;
        this.status.loads++;
        this.status.epoch = m.epoch;
        if (!this.status.connected) this.status.upAt.push(performance.now());
        this.status.connected = true;
        this.ready = true;
      } else if (!this.ready) return;
      else if (m.t === 'object') d.object(objFromWire(m.obj));
      else if (m.t === 'regs') d.setRegs(m.first, m.values);
      else if (m.t === 'delete') d.remove(m.id);
      else if (m.t === 'update') d.update(m.count);
      else if (m.t === 'gone') this.down();
    } catch (e) {
      this.status.refusals.push({ id: 0, code: 'wire', message: String(e) });
    }
    this.status.refusals = [...d.refusals];
  }

  input(e: InputEvent): void {
    this.display.input(e);
    this.transport.input(e);
  }

  /** One frame; nothing is drawn (the last picture stays) until a whole state has loaded. */
  frame(): boolean {
    if (!this.ready) return false;
    const c = this.gl.canvas;
    this.display.resize(0, 0, c.width, c.height);
    if (!this.display.frame()) return false;
    const s = this.status;
    s.frames++;
    s.frameTimes.push(performance.now());
    if (s.frameTimes.length > 4000) s.frameTimes.splice(0, 2000);
    return true;
  }
}

/** The page's entry: a canvas, the SSE transport, a frame every animation frame. */
export function main(): void {
  const q = new URLSearchParams(location.search);
  const canvas = document.querySelector('canvas')!;
  const gl = canvas.getContext('webgl2', { antialias: false, preserveDrawingBuffer: true });
  const out = document.querySelector('#status')!;
  if (!gl) {
    out.textContent = 'this browser has no WebGL2';
    return;
  }
  const mode: ExecMode = q.get('mode') === 'interp' ? 'interp' : 'jit';
  const v = new Viewer(gl, new SseTransport(), mode);
  (window as unknown as { blink: Viewer }).blink = v;
  const pos = (e: PointerEvent) => ({
    x: e.offsetX,
    y: canvas.height - e.offsetY, // GL's origin is bottom left
    buttons: e.buttons,
  });
  canvas.addEventListener('pointermove', (e) => v.input({ kind: 1, ...pos(e) }));
  canvas.addEventListener('pointerdown', (e) => v.input({ kind: 2, ...pos(e) }));
  canvas.addEventListener('pointerup', (e) => v.input({ kind: 3, ...pos(e) }));
  addEventListener('keydown', (e) => v.input({ kind: 4, key: e.keyCode }));
  addEventListener('keyup', (e) => v.input({ kind: 5, key: e.keyCode }));
  v.start();
  const tick = () => {
    v.frame();
    const s = v.status;
    out.textContent = `${s.connected ? 'connected' : 'waiting for the VM'} · frames ${s.frames} · ${mode}${
      s.refusals.length ? '\nrefused: ' + s.refusals.map((r) => r.message).join('\n') : ''
    }`;
    requestAnimationFrame(tick);
  };
  if (q.get('loop') !== 'off') requestAnimationFrame(tick);
}
