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
# The kernels share tfjs's heap: a stack in linear memory (global.get/set of the stack pointer) or a call
# out would be a bug here. Checked where llvm-objdump-19 is installed (it comes with clang-19).
if command -v llvm-objdump-19 >/dev/null && llvm-objdump-19 -d "$out" | grep -qE 'global\.(get|set)|[[:space:]]call[[:space:]]'; then
  echo "error: $out uses a stack in linear memory or calls a function; keep the kernels to locals" >&2
  exit 1
fi
echo "built $out ($(wc -c < "$out") bytes)"
