// A recording WebGL2 context (a test double for the unit tests of src/blink only):
// every call is logged with its arguments, so two executions can be compared.
import type { Gl } from '../src/blink/runtime.js';

export type Call = [string, ...unknown[]];

export function recordingGl(): { gl: Gl; calls: Call[] } {
  const calls: Call[] = [];
  let next = 1;
  const norm = (a: unknown): unknown =>
    a instanceof Float32Array || a instanceof Uint8Array ? Array.from(a) : a;
  const gl = new Proxy(
    {},
    {
      get:
        (_t, name: string) =>
        (...args: unknown[]) => {
          calls.push([name, ...args.map(norm)]);
          if (name.startsWith('create') || name === 'getUniformLocation') return { id: next++ };
          if (name === 'getShaderParameter' || name === 'getProgramParameter') return true;
          return undefined;
        },
    },
  ) as Gl;
  return { gl, calls };
}

/** A small seeded generator, so a failing fuzz case is reproducible. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}
