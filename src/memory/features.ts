// The WebAssembly features a roam VM may use. One list: the loader manifest
// offers it, a checkpoint header names it, a cstrap checks it, and the
// instrumentation pipeline enables exactly these in Binaryen.
export const WASM_FEATURES: readonly string[] = [
  'mutable-globals',
  'bulk-memory',
  'sign-ext',
  'nontrapping-fptoint',
  'simd128',
  'multivalue',
];

/** The features among `wanted` that this roam does not offer. */
export const missingFeatures = (
  wanted: readonly string[],
  offered: readonly string[] = WASM_FEATURES,
): string[] => wanted.filter((f) => !offered.includes(f));
