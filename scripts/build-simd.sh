#!/usr/bin/env bash
# Rebuilds src/core/kernels/simd/kernels.wasm from kernels.c: Fair Prune's own wasm SIMD kernels.
# The .wasm is committed, so building and testing the project needs no C compiler; run this after
# changing kernels.c (Debian: apt-get install clang-19 lld-19). test/unit/kernels-simd.test.ts checks
# that the committed binary is this build of the source wherever clang-19 is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-src/core/kernels/simd/kernels.wasm}
clang=${CLANG:-clang-19}
# -nostdlib, no entry, memory imported (tfjs-backend-wasm's heap): the module owns no memory, data or
# stack; --strip-all keeps the binary the same from one build to the next.
"$clang" --target=wasm32 -O3 -msimd128 -nostdlib -fno-builtin -Wall -Werror \
  -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all \
  -o "$out" src/core/kernels/simd/kernels.c
# The kernels share tfjs's heap: a stack in linear memory (global.get/set of the stack pointer, whose frames
# sit at a fixed address inside tfjs's heap: an array a kernel indexes by a loop variable puts one there)
# would be a bug here. The module imports no functions, so its calls stay inside it. Checked where an
# llvm-objdump is installed (llvm-objdump-19 comes with clang-19).
objdump=$(command -v llvm-objdump-19 || command -v llvm-objdump || true)
# (grep -c, not -q: -q stops reading early and pipefail then takes objdump's SIGPIPE for a failed match.)
if [ -n "$objdump" ] && [ "$("$objdump" -d "$out" | grep -cE 'global\.(get|set)' || true)" != 0 ]; then
  echo "error: $out uses a stack in linear memory; keep the kernels to locals (unroll loops over local arrays)" >&2
  exit 1
fi
echo "built $out ($(wc -c < "$out") bytes)"
