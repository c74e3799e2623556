#!/usr/bin/env bash
# Builds third-party programs as WASI test guests, at test time, into .guests/
# (git-ignored). Their sources come from what is installed (npm packages under
# node_modules); nothing built here, and none of the source, is committed.
#
#   scripts/build-guests.sh           build what is missing or stale
#   scripts/build-guests.sh --force   rebuild everything
#
# Guests:
#   sqlite-speed.wasm  test/guests/sqlite-speed.c (ours) + the SQLite amalgamation
#                      that better-sqlite3 ships in node_modules/better-sqlite3/deps
#
# Exit status: 0 built (or up to date), 3 the WASI toolchain is missing (the
# tests skip then; the message says what to install), 1 anything else.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/.guests"
CLANG="${CLANG:-clang}"
force=0
[ "${1:-}" = "--force" ] && force=1
apt_hint="apt-get install -y --no-install-recommends clang lld wasi-libc libclang-rt-14-dev-wasm32"

if ! command -v "$CLANG" >/dev/null 2>&1; then
  echo "build-guests: '$CLANG' not found; install the WASI toolchain: $apt_hint" >&2
  exit 3
fi
mkdir -p "$out"
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
printf '#include <stdio.h>\nint main(void){puts("ok");return 0;}\n' >"$probe/p.c"
if ! "$CLANG" --target=wasm32-wasi -O2 -o "$probe/p.wasm" "$probe/p.c" 2>"$probe/err"; then
  echo "build-guests: '$CLANG' cannot build for wasm32-wasi ($(head -1 "$probe/err")); install: $apt_hint" >&2
  exit 3
fi

# build OUT SOURCES... -- FLAGS...: rebuild OUT when missing or older than a source.
build() {
  local target="$out/$1"
  shift
  local srcs=() flags=()
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do srcs+=("$1"); shift; done
  [ "$#" -gt 0 ] && shift
  flags=("$@")
  if [ "$force" = 0 ] && [ -f "$target" ]; then
    local stale=0 s
    for s in "${srcs[@]}"; do [ "$s" -nt "$target" ] && stale=1; done
    if [ "$stale" = 0 ]; then
      echo "build-guests: $(basename "$target") is up to date"
      return 0
    fi
  fi
  echo "build-guests: building $(basename "$target") (this takes about a minute)"
  # Built to a temporary name and renamed, so a test never sees half a module.
  "$CLANG" --target=wasm32-wasi -O2 "${flags[@]}" -o "$target.tmp" "${srcs[@]}"
  mv "$target.tmp" "$target"
  echo "build-guests: $(basename "$target") $(stat -c %s "$target") bytes"
}

sqlite="$root/node_modules/better-sqlite3/deps/sqlite3"
if [ -f "$sqlite/sqlite3.c" ]; then
  # SQLite's own WASI support (SQLITE_WASI, set for __wasi__) picks the
  # dot-file locking VFS and leaves threads and extensions out.
  build sqlite-speed.wasm "$root/test/guests/sqlite-speed.c" "$sqlite/sqlite3.c" -- \
    -I"$sqlite" -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_THREADSAFE=0 -DSQLITE_DEFAULT_MEMSTATUS=0 \
    -Wl,--strip-debug
else
  echo "build-guests: $sqlite/sqlite3.c not found (run npm install); sqlite-speed.wasm not built" >&2
  exit 1
fi
