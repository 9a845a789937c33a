#!/usr/bin/env bash
# The one command that sets up a fresh Debian machine with Node 20 and runs every test:
#   bash scripts/test.sh
# Installs what the tests need (Debian packages with apt-get when root, then npm ci) and runs
# scripts/run-tests.sh. CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
command -v make >/dev/null || need_apt+=(make)
command -v g++ >/dev/null || need_apt+=(g++)
# h5py reads the Keras files Fair Prune writes as an independent HDF5 reader (test/unit/keras.test.ts).
/usr/bin/python3 -c 'import h5py' 2>/dev/null || need_apt+=(python3-h5py)
# clang-19 rebuilds the committed SIMD kernels, so a test checks the .wasm is a build of kernels.c.
command -v clang-19 >/dev/null || need_apt+=(clang-19)
command -v wasm-ld-19 >/dev/null || need_apt+=(lld-19)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  else
    echo "missing Debian packages: ${need_apt[*]} (run as root, or: sudo apt-get install ${need_apt[*]})" >&2
  fi
fi

# @tensorflow/tfjs-node is optional: where its native download is unreachable the install skips it.
npm ci --no-audit --no-fund --loglevel=error
# The e2e tests' real VS Code (code-server) and Chromium, cached outside the repository. A failure here
# is reported by run-tests.sh as a failed e2e step; FAIRPRUNE_E2E=0 skips both.
if [ "${FAIRPRUNE_E2E:-1}" != 0 ]; then
  bash scripts/setup-e2e.sh >/dev/null || export FAIRPRUNE_E2E_SETUP_FAILED=1
fi
exec bash scripts/run-tests.sh
