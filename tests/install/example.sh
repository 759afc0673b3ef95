#!/usr/bin/env bash
# The C example test: install the already-built tree into a fresh prefix,
# build examples/ against it with find_package(ferry) as a user's project
# would, and run one epoch through the loader on the cpu backend: on an R-MAT
# graph, and on Cora when its files are present.
#
#   example.sh BUILD_DIR EXAMPLES_SRC WORK_DIR C_COMPILER [SANITIZERS] [CORA_PREFIX]
set -euo pipefail

build=$1 examples=$2 work=$3 cc=$4 sanitize=${5:-} cora=${6:-}

fail() { echo "example test: $*" >&2; exit 1; }

# Neither the example's loader nor its linker may see the build tree.
unset FERRY_PLUGIN_PATH LD_LIBRARY_PATH PKG_CONFIG_PATH
flags=()
[[ -n $sanitize ]] && flags=("-fsanitize=$sanitize")

rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log" ||
  { cat "$work/install.log"; fail "cmake --install failed"; }

cmake -S "$examples" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="${flags[*]:-}" \
  -DCMAKE_EXE_LINKER_FLAGS="${flags[*]:-}" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; fail "configuring examples/ failed"; }
cmake --build "$work/build" >>"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; fail "building examples/ failed"; }

run() {
  local out
  out=$(FERRY_BACKEND=cpu "$work/build/loader_epoch" "$@" 2>&1) ||
    { echo "$out"; fail "loader_epoch $* failed"; }
  echo "$out" | sed 's|^|  loader_epoch: |'
  grep -qx 'example: ok' <<<"$out" || fail "loader_epoch $* did not finish"
  grep -q '^backend: cpu' <<<"$out" || fail "loader_epoch did not run on cpu"
}

echo "-- R-MAT"
run
if [[ -n $cora && -f $cora.content && -f $cora.cites ]]; then
  echo "-- Cora"
  run "$cora"
else
  echo "-- Cora: not present here, skipped"
fi
echo "example test: ok"
