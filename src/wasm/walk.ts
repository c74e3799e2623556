// A generic expression walker for binaryen.js, which has none of its own: for each
// expression kind we list its children by the accessor names binaryen.js exposes
// (`binaryen.Store.getPtr` / `setPtr`, `binaryen.Call.getOperandAt` / `setOperandAt`,
// ...), so one walker can visit and replace any child.
import binaryen from 'binaryen';

type Ref = number;
type Accessor = { kind: 'one'; name: string } | { kind: 'many'; num: string; name: string };
const one = (name: string): Accessor => ({ kind: 'one', name });
const many = (num: string, name: string): Accessor => ({ kind: 'many', num, name });

// binaryen.js's expression classes are untyped: this walker reaches them by name.
/* eslint-disable @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-explicit-any */
const b = binaryen as unknown as Record<string, any>;

// Expression id → [binaryen.js class name, child accessors]. Kinds that have no
// children are listed with an empty array; a kind missing from the table is a
// feature roam does not support yet, reported by name.
const table = new Map<number, [string, Accessor[]]>([
  [b.BlockId, ['Block', [many('NumChildren', 'ChildAt')]]],
  [b.IfId, ['If', [one('Condition'), one('IfTrue'), one('IfFalse')]]],
  [b.LoopId, ['Loop', [one('Body')]]],
  [b.BreakId, ['Break', [one('Condition'), one('Value')]]],
  [b.SwitchId, ['Switch', [one('Condition'), one('Value')]]],
  [b.CallId, ['Call', [many('NumOperands', 'OperandAt')]]],
  [b.CallIndirectId, ['CallIndirect', [one('Target'), many('NumOperands', 'OperandAt')]]],
  [b.LocalGetId, ['LocalGet', []]],
  [b.LocalSetId, ['LocalSet', [one('Value')]]],
  [b.GlobalGetId, ['GlobalGet', []]],
  [b.GlobalSetId, ['GlobalSet', [one('Value')]]],
  [b.LoadId, ['Load', [one('Ptr')]]],
  [b.StoreId, ['Store', [one('Ptr'), one('Value')]]],
  [b.AtomicRMWId, ['AtomicRMW', [one('Ptr'), one('Value')]]],
  [b.AtomicCmpxchgId, ['AtomicCmpxchg', [one('Ptr'), one('Expected'), one('Replacement')]]],
  [b.AtomicWaitId, ['AtomicWait', [one('Ptr'), one('Expected'), one('Timeout')]]],
  [b.AtomicNotifyId, ['AtomicNotify', [one('Ptr'), one('NotifyCount')]]],
  [b.AtomicFenceId, ['AtomicFence', []]],
  [b.SIMDExtractId, ['SIMDExtract', [one('Vec')]]],
  [b.SIMDReplaceId, ['SIMDReplace', [one('Vec'), one('Value')]]],
  [b.SIMDShuffleId, ['SIMDShuffle', [one('Left'), one('Right')]]],
  [b.SIMDTernaryId, ['SIMDTernary', [one('A'), one('B'), one('C')]]],
  [b.SIMDShiftId, ['SIMDShift', [one('Vec'), one('Shift')]]],
  [b.SIMDLoadId, ['SIMDLoad', [one('Ptr')]]],
  [b.SIMDLoadStoreLaneId, ['SIMDLoadStoreLane', [one('Ptr'), one('Vec')]]],
  [b.MemoryInitId, ['MemoryInit', [one('Dest'), one('Offset'), one('Size')]]],
  [b.DataDropId, ['DataDrop', []]],
  [b.MemoryCopyId, ['MemoryCopy', [one('Dest'), one('Source'), one('Size')]]],
  [b.MemoryFillId, ['MemoryFill', [one('Dest'), one('Value'), one('Size')]]],
  [b.ConstId, ['Const', []]],
  [b.UnaryId, ['Unary', [one('Value')]]],
  [b.BinaryId, ['Binary', [one('Left'), one('Right')]]],
  [b.SelectId, ['Select', [one('IfTrue'), one('IfFalse'), one('Condition')]]],
  [b.DropId, ['Drop', [one('Value')]]],
  [b.ReturnId, ['Return', [one('Value')]]],
  [b.MemorySizeId, ['MemorySize', []]],
  [b.MemoryGrowId, ['MemoryGrow', [one('Delta')]]],
  [b.NopId, ['Nop', []]],
  [b.UnreachableId, ['Unreachable', []]],
  [b.RefNullId, ['RefNull', []]],
  [b.RefIsNullId, ['RefIsNull', [one('Value')]]],
  [b.RefFuncId, ['RefFunc', []]],
  [b.RefEqId, ['RefEq', [one('Left'), one('Right')]]],
  [b.TableGetId, ['TableGet', [one('Index')]]],
  [b.TableSetId, ['TableSet', [one('Index'), one('Value')]]],
  [b.TableSizeId, ['TableSize', []]],
  [b.TableGrowId, ['TableGrow', [one('Value'), one('Delta')]]],
  [b.TupleMakeId, ['TupleMake', [many('NumOperands', 'OperandAt')]]],
  [b.TupleExtractId, ['TupleExtract', [one('Tuple')]]],
  [b.PopId, ['Pop', []]],
]);

export const expressionName = (expr: Ref): string =>
  table.get(binaryen.getExpressionId(expr))?.[0] ??
  `expression kind ${binaryen.getExpressionId(expr)}`;

/**
 * Walk `root` in post-order. `visit` may return a replacement expression for the
 * node it was given; the parent's child slot is updated. Returns the (possibly
 * replaced) root.
 */
export function walk(root: Ref, visit: (expr: Ref, id: number) => Ref | void): Ref {
  const rec = (expr: Ref): Ref => {
    const id = binaryen.getExpressionId(expr);
    const entry = table.get(id);
    if (!entry)
      throw new Error(`unsupported WebAssembly feature in this module: expression kind ${id}`);
    const [cls, accessors] = entry;
    const api = b[cls];
    for (const acc of accessors) {
      if (acc.kind === 'one') {
        const child = api['get' + acc.name](expr) as Ref;
        if (!child) continue;
        const next = rec(child);
        if (next !== child) api['set' + acc.name](expr, next);
      } else {
        const n = api['get' + acc.num](expr) as number;
        for (let i = 0; i < n; i++) {
          const child = api['get' + acc.name](expr, i) as Ref;
          const next = rec(child);
          if (next !== child) api['set' + acc.name](expr, i, next);
        }
      }
    }
    return visit(expr, id) || expr;
  };
  return rec(root);
}

/** Calls `fn` on each direct child of `expr` (no recursion, no replacement). */
export function walkChildren(expr: Ref, fn: (child: Ref) => void): void {
  const entry = table.get(binaryen.getExpressionId(expr));
  if (!entry)
    throw new Error(
      `unsupported WebAssembly feature in this module: expression kind ${binaryen.getExpressionId(expr)}`,
    );
  const [cls, accessors] = entry;
  const api = b[cls];
  for (const acc of accessors) {
    if (acc.kind === 'one') {
      const child = api['get' + acc.name](expr) as Ref;
      if (child) fn(child);
    } else {
      const n = api['get' + acc.num](expr) as number;
      for (let i = 0; i < n; i++) fn(api['get' + acc.name](expr, i) as Ref);
    }
  }
}

/** Calls `fn` for every function defined (not imported) in the module. */
export function forEachDefinedFunction(
  mod: binaryen.Module,
  fn: (ref: number, info: binaryen.FunctionInfo) => void,
): void {
  for (let i = 0; i < mod.getNumFunctions(); i++) {
    const ref = mod.getFunctionByIndex(i);
    const info = binaryen.getFunctionInfo(ref);
    if (info.module) continue;
    fn(ref, info);
  }
}
