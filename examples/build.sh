#!/usr/bin/env bash
# Rebuilds every example .wasm in this directory from its source.
#
#   examples/build.sh            build everything
#   examples/build.sh bigmem     build only the named examples (sieve-as for the AssemblyScript one)
#
# C programs:      clang --target=wasm32-wasi (clang 14 + wasi-libc, Debian/Ubuntu packages)
# AssemblyScript:  asc from the project's node_modules with @assemblyscript/wasi-shim
# Override the compiler with CLANG=/path/to/clang.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$here"

CLANG="${CLANG:-clang}"
CFLAGS=(--target=wasm32-wasi -O2 -Wall -Wextra -Wl,--strip-debug)
C_PROGRAMS=(bigmem files echo-server counter ckpt-driver connect game-server dirtier hypercube spew args gears blink-game)
AS_PROGRAMS=(sieve-as)

if [ "$#" -gt 0 ]; then wanted=("$@"); else wanted=("${C_PROGRAMS[@]}" "${AS_PROGRAMS[@]}"); fi

want() {
  local w
  for w in "${wanted[@]}"; do [ "$w" = "$1" ] && return 0; done
  return 1
}

run() {
  echo "+ $*"
  "$@"
}

apt_hint="sudo apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32"

need_c=0
for p in "${C_PROGRAMS[@]}"; do want "$p" && need_c=1; done
if [ "$need_c" = 1 ]; then
  if ! command -v "$CLANG" >/dev/null 2>&1; then
    echo "build.sh: '$CLANG' not found. Install clang and wasi-libc with:" >&2
    echo "  $apt_hint" >&2
    exit 1
  fi
  # clang alone is not enough: it also needs wasm-ld (lld), wasi-libc and the wasm32 builtins.
  probe="$(mktemp -d)"
  trap 'rm -rf "$probe"' EXIT
  printf '#include <stdio.h>\nint main(void){puts("ok");return 0;}\n' >"$probe/probe.c"
  if ! "$CLANG" --target=wasm32-wasi -O2 -o "$probe/probe.wasm" "$probe/probe.c" 2>"$probe/err"; then
    echo "build.sh: '$CLANG' cannot build for wasm32-wasi:" >&2
    sed 's/^/  /' "$probe/err" >&2
    echo "Install the WASI toolchain with:" >&2
    echo "  $apt_hint" >&2
    exit 1
  fi
fi

built=()
for p in "${C_PROGRAMS[@]}"; do
  want "$p" || continue
  run "$CLANG" "${CFLAGS[@]}" -o "$p.wasm" "$p.c"
  built+=("$p.wasm")
done

if want sieve-as; then
  # Relative paths on purpose: asc 0.28 fails to resolve the shim's "lib"
  # folder when --config is given as an absolute path.
  asc="../node_modules/.bin/asc"
  shim="../node_modules/@assemblyscript/wasi-shim/asconfig.json"
  if [ ! -x "$asc" ] || [ ! -f "$shim" ]; then
    echo "build.sh: AssemblyScript compiler or @assemblyscript/wasi-shim missing under $root/node_modules" >&2
    echo "  (run 'npm install' in $root)" >&2
    exit 1
  fi
  run "$asc" as/sieve.ts --config "$shim" -O3 -o sieve-as.wasm
  built+=("sieve-as.wasm")
fi

# Every program must be a WASI command: export _start, import only wasi_snapshot_preview1.
if command -v node >/dev/null 2>&1 && [ "${#built[@]}" -gt 0 ]; then
  node - "${built[@]}" <<'EOF'
const fs = require('node:fs');
let bad = 0;
for (const f of process.argv.slice(2)) {
  const m = new WebAssembly.Module(fs.readFileSync(f));
  const foreign = WebAssembly.Module.imports(m).filter((i) => i.module !== 'wasi_snapshot_preview1');
  const start = WebAssembly.Module.exports(m).some((e) => e.name === '_start' && e.kind === 'function');
  const problems = [];
  if (!start) problems.push('no _start export');
  if (foreign.length) problems.push('non-WASI imports: ' + foreign.map((i) => `${i.module}.${i.name}`).join(', '));
  console.log(`${f.padEnd(18)} ${String(fs.statSync(f).size).padStart(7)} bytes  ${problems.length ? 'BAD: ' + problems.join('; ') : 'ok'}`);
  if (problems.length) bad = 1;
}
process.exit(bad);
EOF
fi
