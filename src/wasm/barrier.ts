// The write barrier of the tracked variant (pipeline.ts applies it to the
// Asyncify output, so both variants keep one stack layout).
import binaryen from 'binaryen';
import { ROAM, walkBody } from './instrument.js';
import { forEachDefinedFunction, walk } from './walk.js';

// binaryen.js types its Module but not its expression classes (binaryen.Store.getPtr,
// ...), which the barrier reaches by name: their values are untyped by nature.
/* eslint-disable @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-explicit-any */
const b = binaryen as unknown as Record<string, any>;
const { i32, none } = binaryen;

/**
 * The write barrier (thesis 6.2–6.3, here in software): before every store, set the
 * byte of the touched 4 KiB page(s) in the dirty bitmap at `roam_dirty_base`.
 * Range operations (memory.fill/copy/init) mark their whole destination range.
 */
export function insertBarrier(mod: binaryen.Module, skip: Set<string>): void {
  const stores = new Set([
    b.StoreId,
    b.AtomicRMWId,
    b.AtomicCmpxchgId,
    b.SIMDLoadStoreLaneId,
    b.MemoryFillId,
    b.MemoryCopyId,
    b.MemoryInitId,
  ]);
  forEachDefinedFunction(mod, (ref, info) => {
    if (skip.has(info.name)) return;
    let writes = false;
    walk(info.body, (_e, id) => {
      if (stores.has(id)) writes = true;
    });
    if (writes) barrierFunction(mod, ref, info);
  });
}

/** The barrier in one function that writes memory. */
function barrierFunction(mod: binaryen.Module, ref: number, info: binaryen.FunctionInfo): void {
  const { reload, afterCall, markPtr, markRange } = barrierOps(mod, ref);
  walkBody(ref, info.body, (expr, id) => {
    if (id === b.StoreId) markPtr(expr, 'Store', b.Store.getBytes(expr));
    else if (id === b.AtomicRMWId) markPtr(expr, 'AtomicRMW', b.AtomicRMW.getBytes(expr));
    else if (id === b.AtomicCmpxchgId)
      markPtr(expr, 'AtomicCmpxchg', b.AtomicCmpxchg.getBytes(expr));
    else if (id === b.SIMDLoadStoreLaneId && b.SIMDLoadStoreLane.isStore(expr))
      markPtr(expr, 'SIMDLoadStoreLane', 8);
    else if (id === b.MemoryFillId) return markRange(expr, 'MemoryFill', 'Value');
    else if (id === b.MemoryCopyId) return markRange(expr, 'MemoryCopy', 'Source');
    else if (id === b.MemoryInitId) return markRange(expr, 'MemoryInit', 'Offset');
    else if (id === b.CallId || id === b.CallIndirectId) return afterCall(expr);
  });
  const body = b._BinaryenFunctionGetBody(ref);
  b._BinaryenFunctionSetBody(ref, mod.block(null, [reload(), body], info.results));
}

/** The code the barrier adds to function `ref`: mark the pages a store touches, keep the base. */
function barrierOps(mod: binaryen.Module, ref: number) {
  // The bitmap's base, kept in a local: loaded at entry and again after every call
  // (only a call can grow memory and so move the region), so a hot loop with no
  // call does not reload the global at every store.
  const base = b._BinaryenFunctionAddVar(ref, i32);
  const reload = () => mod.local.set(base, mod.global.get(ROAM.dirtyBase, i32));
  const mark = (addr: number) =>
    mod.i32.store8(
      0,
      0,
      mod.i32.add(mod.local.get(base, i32), mod.i32.shr_u(addr, mod.i32.const(12))),
      mod.i32.const(1),
    );
  const afterCall = (call: number): number => {
    const t = binaryen.getExpressionType(call);
    if (t === binaryen.unreachable) return call;
    if (t === none) return mod.block(null, [call, reload()], none);
    const v = b._BinaryenFunctionAddVar(ref, t);
    return mod.block(null, [mod.local.set(v, call), reload(), mod.local.get(v, t)], t);
  };
  let tmp = -1;
  const local = () => (tmp >= 0 ? tmp : (tmp = b._BinaryenFunctionAddVar(ref, i32)));
  const markPtr = (expr: number, cls: string, bytes: number) => {
    const a = local();
    const off = b[cls].getOffset(expr) as number;
    const at = (extra: number) =>
      mod.i32.add(mod.local.get(a, i32), mod.i32.const((off + extra) | 0));
    const marks = [mark(at(0))];
    if (bytes > 1) marks.push(mark(at(bytes - 1)));
    b[cls].setPtr(
      expr,
      mod.block(
        null,
        [mod.local.set(a, b[cls].getPtr(expr)), ...marks, mod.local.get(a, i32)],
        i32,
      ),
    );
  };
  const markRange = (expr: number, cls: string, second: string) => {
    const d = b._BinaryenFunctionAddVar(ref, i32),
      s = b._BinaryenFunctionAddVar(ref, i32),
      n = b._BinaryenFunctionAddVar(ref, i32);
    const g = (i: number) => mod.local.get(i, i32);
    const first = mod.i32.shr_u(g(d), mod.i32.const(12));
    const last = mod.i32.shr_u(
      mod.i32.sub(mod.i32.add(g(d), g(n)), mod.i32.const(1)),
      mod.i32.const(12),
    );
    const sets = [
      mod.local.set(d, b[cls].getDest(expr)),
      mod.local.set(s, b[cls]['get' + second](expr)),
      mod.local.set(n, b[cls].getSize(expr)),
      mod.if(
        g(n),
        mod.memory.fill(
          mod.i32.add(mod.local.get(base, i32), first),
          mod.i32.const(1),
          mod.i32.add(mod.i32.sub(last, mod.i32.shr_u(g(d), mod.i32.const(12))), mod.i32.const(1)),
        ),
      ),
    ];
    b[cls].setDest(expr, g(d));
    b[cls]['set' + second](expr, g(s));
    b[cls].setSize(expr, g(n));
    return mod.block(null, [...sets, expr], none);
  };
  return { reload, afterCall, markPtr, markRange };
}
