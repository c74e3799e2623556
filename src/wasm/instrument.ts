// The instrumentation passes that make an unmodified WASI module checkpointable.
// Each pass edits a binaryen module in place; prepare.ts orders them.
import binaryen from 'binaryen';
import { forEachDefinedFunction, walk, walkChildren } from './walk.js';

// binaryen.js types its Module but not its expression classes (binaryen.Store.getPtr,
// ...), which these passes reach by name: their values are untyped by nature.
/* eslint-disable @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-explicit-any */
const b = binaryen as unknown as Record<string, any>;
const { i32, none } = binaryen;

/** Names of the globals and functions roam adds; all start with `roam_`. */
export const ROAM = {
  fuel: 'roam_fuel',
  /** The countdown of polls at loops that enclose a call-free loop (see insertPolls). */
  heavyFuel: 'roam_hfuel',
  virtPages: 'roam_virt_pages',
  dirtyBase: 'roam_dirty_base',
  poll: 'roam_poll',
  grow: 'roam_grow',
} as const;

/**
 * Functions that can reach a blocking import, directly or through other functions.
 * An indirect call reaches only the table's functions of its own signature (the
 * engine traps on any other), so a call through a function pointer does not make
 * a function unwindable unless a function of that signature in the table is.
 * These are the functions Asyncify instruments, and the only ones that get
 * safepoint polls: hot leaf code that can never block stays untouched.
 */
export function unwindableFunctions(mod: binaryen.Module, blocking: Set<string>): Set<string> {
  const sig = (params: number, results: number) => `${params}:${results}`;
  const sigOf = new Map<string, string>();
  const seeds: string[] = [];
  for (let i = 0; i < mod.getNumFunctions(); i++) {
    const info = binaryen.getFunctionInfo(mod.getFunctionByIndex(i));
    sigOf.set(info.name, sig(info.params, info.results));
    if (info.module && blocking.has(`${info.module}.${info.base}`)) seeds.push(info.name);
  }
  const tableBySig = new Map<string, string[]>();
  for (let i = 0; i < mod.getNumElementSegments(); i++) {
    for (const name of binaryen.getElementSegmentInfo(mod.getElementSegmentByIndex(i)).data) {
      const s = sigOf.get(name);
      if (s === undefined) continue;
      const list = tableBySig.get(s) ?? [];
      list.push(name);
      tableBySig.set(s, list);
    }
  }
  // callers.get(f): the functions with a call (direct or through the table) that may reach f.
  const callers = new Map<string, Set<string>>();
  const edge = (from: string, to: string) => {
    let set = callers.get(to);
    if (!set) callers.set(to, (set = new Set()));
    set.add(from);
  };
  forEachDefinedFunction(mod, (_ref, info) => {
    const sigs = new Set<string>();
    walk(info.body, (expr, id) => {
      if (id === b.CallId) edge(info.name, b.Call.getTarget(expr));
      else if (id === b.CallIndirectId)
        sigs.add(sig(b.CallIndirect.getParams(expr), b.CallIndirect.getResults(expr)));
    });
    for (const s of sigs) for (const target of tableBySig.get(s) ?? []) edge(info.name, target);
  });
  // Walk the call graph backwards from the blocking imports.
  const result = new Set<string>();
  const todo = [...seeds];
  while (todo.length) {
    for (const caller of callers.get(todo.pop()!) ?? []) {
      if (result.has(caller)) continue;
      result.add(caller);
      todo.push(caller);
    }
  }
  return result;
}

/** Poll classes, passed to roam.poll: each has its own countdown, tuned to its own pace. */
export const POLL_LIGHT = 0;
export const POLL_HEAVY = 1;

/** The safepoint poll: a countdown in a global; at zero, call into the kernel. */
function pollExpr(mod: binaryen.Module, heavy = false): number {
  const fuel = heavy ? ROAM.heavyFuel : ROAM.fuel;
  return mod.block(
    null,
    [
      mod.global.set(fuel, mod.i32.sub(mod.global.get(fuel, i32), mod.i32.const(1))),
      mod.if(
        mod.i32.lt_s(mod.global.get(fuel, i32), mod.i32.const(0)),
        mod.call(ROAM.poll, [mod.i32.const(heavy ? POLL_HEAVY : POLL_LIGHT)], none),
      ),
    ],
    none,
  );
}

/** Whether `expr` contains a loop that makes no calls (one that gets no poll of its own). */
function containsQuietLoop(expr: number): boolean {
  let quiet = false;
  walk(expr, (e, id) => {
    if (id !== b.LoopId || quiet) return;
    let calls = false;
    walk(b.Loop.getBody(e), (_c, cid) => {
      if (cid === b.CallId || cid === b.CallIndirectId) calls = true;
    });
    if (!calls) quiet = true;
  });
  return quiet;
}

/**
 * Calls `fn(loop, nested, hasCall)` for every loop under `root`, innermost first:
 * `nested` = inside another loop, `hasCall` = its body contains a call.
 */
function walkLoops(
  root: number,
  nested: boolean,
  fn: (loop: number, nested: boolean, hasCall: boolean) => void,
): void {
  // Visit loops top-down so each knows whether it is nested. The root itself may be
  // a loop (a function whose whole body is one loop).
  const visit = (expr: number, depth: number) => {
    if (binaryen.getExpressionId(expr) !== b.LoopId)
      return walkChildren(expr, (child) => visit(child, depth));
    let calls = false;
    walk(b.Loop.getBody(expr), (_e, cid) => {
      if (cid === b.CallId || cid === b.CallIndirectId) calls = true;
    });
    walkChildren(expr, (child) => visit(child, depth + 1));
    fn(expr, depth > 0 || nested, calls);
  };
  visit(root, 0);
}

/** walk() over a function's body, installing the new body when the root itself was replaced. */
export function walkBody(
  ref: number,
  body: number,
  visit: (expr: number, id: number) => number | void,
): void {
  const next = walk(body, visit);
  if (next !== body) b._BinaryenFunctionSetBody(ref, next);
}

/** Safepoint polls at function entry and every loop header of `fns`. */
export function insertPolls(mod: binaryen.Module, fns: Set<string>): void {
  mod.addGlobal(ROAM.fuel, i32, true, mod.i32.const(0));
  mod.addGlobalExport(ROAM.fuel, ROAM.fuel);
  mod.addGlobal(ROAM.heavyFuel, i32, true, mod.i32.const(0));
  mod.addGlobalExport(ROAM.heavyFuel, ROAM.heavyFuel);
  mod.addFunctionImport(ROAM.poll, 'roam', 'poll', i32, none);
  forEachDefinedFunction(mod, (ref, info) => {
    if (!fns.has(info.name)) return;
    // An inner loop that makes no calls relies on its enclosing loop's poll: hot
    // inner loops stay untouched, and a freeze waits at most one inner loop. That
    // enclosing loop counts down on its own fuel: one of its iterations may sweep
    // hundreds of MiB, and a countdown sized while printf polled every microsecond
    // would let it run for seconds past the end of its slice.
    walkLoops(info.body, false, (loop, nested, hasCall) => {
      if (nested && !hasCall) return;
      const body = b.Loop.getBody(loop);
      const poll = pollExpr(mod, containsQuietLoop(body));
      b.Loop.setBody(loop, mod.block(null, [poll, body], binaryen.getExpressionType(body)));
    });
    const body = b._BinaryenFunctionGetBody(ref);
    b._BinaryenFunctionSetBody(
      ref,
      mod.block(null, [pollExpr(mod), body], binaryen.getExpressionType(body)),
    );
  });
}

/**
 * Hide roam's region (dirty bitmap + Asyncify buffer) in the top `regionPages` wasm
 * pages of linear memory: the program sees `memory.size` without them, and
 * `memory.grow` moves the region up. Node 20 has no multi-memory, so this is how
 * roam's own data lives in memory 0 without relinking the program.
 */
export function hideRegion(mod: binaryen.Module, initialPages: number, regionPages: number): void {
  mod.addGlobal(ROAM.virtPages, i32, true, mod.i32.const(initialPages));
  mod.addGlobal(ROAM.dirtyBase, i32, true, mod.i32.const(initialPages * 65536));
  mod.addGlobalExport(ROAM.virtPages, ROAM.virtPages);
  mod.addGlobalExport(ROAM.dirtyBase, ROAM.dirtyBase);
  forEachDefinedFunction(mod, (ref, info) => {
    walkBody(ref, info.body, (expr, id) => {
      if (id === b.MemorySizeId) return mod.global.get(ROAM.virtPages, i32);
      if (id === b.MemoryGrowId) return mod.call(ROAM.grow, [b.MemoryGrow.getDelta(expr)], i32);
    });
  });
  // grow(d): grow the real memory, move the region up by d pages, and zero the
  // program's new pages that the region used to occupy.
  const D = 0,
    OLD = 1;
  const get = (i: number) => mod.local.get(i, i32);
  const pages = (e: number) => mod.i32.shl(e, mod.i32.const(16));
  const body = mod.block(
    null,
    [
      mod.local.set(OLD, mod.global.get(ROAM.virtPages, i32)),
      mod.if(mod.i32.eq(mod.memory.grow(get(D)), mod.i32.const(-1)), mod.return(mod.i32.const(-1))),
      mod.memory.copy(
        pages(mod.i32.add(get(OLD), get(D))),
        pages(get(OLD)),
        mod.i32.const(regionPages << 16),
      ),
      mod.memory.fill(
        pages(get(OLD)),
        mod.i32.const(0),
        pages(
          mod.select(
            mod.i32.lt_u(get(D), mod.i32.const(regionPages)),
            get(D),
            mod.i32.const(regionPages),
          ),
        ),
      ),
      mod.global.set(ROAM.virtPages, mod.i32.add(get(OLD), get(D))),
      mod.global.set(ROAM.dirtyBase, pages(mod.global.get(ROAM.virtPages, i32))),
      get(OLD),
    ],
    i32,
  );
  mod.addFunction(ROAM.grow, i32, i32, [i32], body);
}

/** Export every mutable global the program defines, so the kernel can save and restore them. */
export function exportMutableGlobals(mod: binaryen.Module): Array<{ name: string; type: string }> {
  const out: Array<{ name: string; type: string }> = [];
  const typeName = new Map<number, string>([
    [binaryen.i32, 'i32'],
    [binaryen.i64, 'i64'],
    [binaryen.f32, 'f32'],
    [binaryen.f64, 'f64'],
  ]);
  for (let i = 0; i < mod.getNumGlobals(); i++) {
    const info = binaryen.getGlobalInfo(mod.getGlobalByIndex(i));
    if (info.module || !info.mutable || info.name.startsWith('roam_')) continue;
    const t = typeName.get(info.type);
    if (!t)
      throw new Error(`unsupported: mutable global ${info.name} of a reference or vector type`);
    const exportName = `roam_g${out.length}`;
    mod.addGlobalExport(info.name, exportName);
    out.push({ name: exportName, type: t });
  }
  return out;
}

/** Refuse modules that use what roam cannot checkpoint yet, with a clear reason. */
export function checkSupported(mod: binaryen.Module): void {
  forEachDefinedFunction(mod, (_ref, info) => {
    walk(info.body, (_expr, id) => {
      if (id === b.TableSetId || id === b.TableGrowId)
        throw new Error(
          `unsupported: function ${info.name} modifies a table (table.set/table.grow); roam cannot checkpoint mutable tables yet`,
        );
    });
  });
}
