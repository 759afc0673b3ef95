#!/usr/bin/env bash
# Builds ferry with every backend whose toolchain is present and runs its
# benchmarks on every backend that has a device here, writing the results to
# build/bench-results.{json,csv} and the plot build/bench-results.png, then
# runs the PyTorch/timm peers on the same shapes (docs/benchmarks.md). Extra arguments go to ferry-bench (e.g. --quick, or a
# benchmark name).
#
#   bash .ci/build-and-bench.sh [FERRY-BENCH ARGS...]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
build=${FERRY_BUILD_DIR:-$ferry_src/build}
export POCL_CACHE_DIR=$build/pocl-cache

stage deps ferry_install_deps "${ferry_bench_packages[@]}"
stage configure ferry_configure "$build"
stage build ferry_build "$build"
stage bench "$build/bin/ferry-bench" --json "$build/bench-results.json" \
  --csv "$build/bench-results.csv" "$@"
# Debian's interpreter: matplotlib and torch are Debian packages (a python3
# earlier on PATH, e.g. pyenv's, does not see them).
py=${FERRY_PYTHON:-/usr/bin/python3}
stage plot "$py" "$ferry_src/bench/plot_results.py" \
  "$build/bench-results.json" "$build/bench-results.png"
# PyTorch and timm on the same shapes (cpu), their time ratios printed.
stage peers bash "$ferry_src/bench/peers/run_peers.sh" \
  "$build/bench-results.json" "$build"
