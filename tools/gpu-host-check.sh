#!/usr/bin/env bash
# gpu-host-check.sh: build ferry with the cuda plugin on a machine with an
# NVIDIA GPU and check it there, in under ten minutes:
#
#   tools/gpu-host-check.sh --deps PREFIX --out DIR [options]
#
#   --deps PREFIX     where tools/gpu-deps-fetch.sh unpacked hwloc, Criterion
#                     and pkgconf (PREFIX/usr/...); needed where the host
#                     lacks them (a GPU host that reaches no network)
#   --out DIR         logs and results (created): summary.txt, configure.log,
#                     build.log, ctest.log, memcheck.log, racecheck.log,
#                     bench.log, bench-cuda.json
#   --build DIR       build directory (default: a fresh one under $TMPDIR)
#   --arch LIST       FERRY_CUDA_ARCHITECTURES (default: the GPUs'
#                     compute capabilities from nvidia-smi, else 90)
#   --jobs N          build jobs (default: all processors)
#   --cmake-arg ARG   one more argument for the configure step (repeatable,
#                     e.g. --cmake-arg -DFERRY_WERROR=OFF)
#   --no-sanitizers   skip compute-sanitizer
#   --no-bench        skip ferry-bench
#   --steps LIST      only these of ctest,memcheck,racecheck,bench (configure
#                     and build always run; with a kept --build they take
#                     seconds). A device call lasts at most 10 minutes: run
#                     `--steps ctest`, then `--steps memcheck,racecheck`,
#                     then `--steps bench`, with the same --build and --out.
#   --configure-only  stop after configuring (needs no GPU: for checking this
#                     script and the dependencies where there is none)
#
# Steps: configure (cuda plugin ON), build, `ctest -L cuda` (a skipped cuda
# test is a failure here: there is a GPU), every cuda test executable under
# compute-sanitizer memcheck and racecheck, ferry-bench --backend cuda
# --json. Exits 0 only if every step passed; 2 on bad usage or no GPU.
set -uo pipefail
steps=",ctest,memcheck,racecheck,bench,"
# want STEP: the step was asked for (--steps).
want() { case "$steps" in *",$1,"*) return 0 ;; esac; return 1; }

die_usage() {
  echo "gpu-host-check: $*" >&2
  echo "usage: tools/gpu-host-check.sh --deps PREFIX --out DIR [--build DIR]" \
    "[--arch LIST] [--jobs N] [--cmake-arg ARG]... [--no-sanitizers]" \
    "[--no-bench] [--steps LIST]" \
    "[--configure-only]" >&2
  exit 2
}

deps="" out="" build="" arch="" jobs="" sanitizers=1 bench=1 configure_only=0
extra_cmake=()
while [ $# -gt 0 ]; do
  case "$1" in
  --deps | --out | --build | --arch | --jobs | --cmake-arg)
    if [ $# -lt 2 ] || [ -z "$2" ]; then
      die_usage "$1 needs a value"
    fi
    case "$1" in
    --deps) deps=$2 ;;
    --out) out=$2 ;;
    --build) build=$2 ;;
    --arch) arch=$2 ;;
    --jobs) jobs=$2 ;;
    --cmake-arg) extra_cmake+=("$2") ;;
    esac
    shift 2
    ;;
  --no-sanitizers)
    sanitizers=0
    shift
    ;;
  --no-bench)
    bench=0
    shift
    ;;
  --configure-only)
    configure_only=1
    shift
    ;;
  --steps)
    [ $# -ge 2 ] || die_usage "--steps needs a value"
    steps=",$2,"
    shift 2
    ;;
  -h | --help)
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
    exit 0
    ;;
  *) die_usage "unknown argument '$1'" ;;
  esac
done
[ -n "$out" ] || die_usage "--out DIR is required"
if [ -n "$jobs" ] && ! [[ "$jobs" =~ ^[1-9][0-9]*$ ]]; then
  die_usage "--jobs '$jobs' is not a positive number"
fi
if [ -n "$deps" ] && [ ! -d "$deps/usr" ]; then
  die_usage "--deps '$deps' has no usr/ (unpack with tools/gpu-deps-fetch.sh)"
fi

source_dir=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out" || die_usage "cannot create --out '$out'"
out=$(cd "$out" && pwd)
[ -n "$deps" ] && deps=$(cd "$deps" && pwd)
start=$(date +%s)
budget=570 # seconds: the whole run stays under ten minutes
summary=$out/summary.txt
: >"$summary"
failed=0

note() { echo "gpu-host-check: $*" | tee -a "$summary"; }
left() { echo $((budget - ($(date +%s) - start))); }
# step NAME LIMIT LOG COMMAND...: run with a time limit (at most what is
# left of the budget), log to LOG, record the outcome. A COMMAND that is a
# function of this script gets its deadline in $deadline instead.
deadline=0
step() {
  local name=$1 limit=$2 log=$3
  shift 3
  local remaining
  remaining=$(left)
  if [ "$remaining" -le 5 ]; then
    note "$name: NOT RUN (the ten-minute budget is spent)"
    failed=1
    return 1
  fi
  [ "$limit" -gt "$remaining" ] && limit=$remaining
  local t0 rc
  t0=$(date +%s)
  if declare -F "$1" >/dev/null; then
    deadline=$((t0 + limit))
    "$@" >>"$log" 2>&1
  else
    timeout --kill-after=10 "$limit" "$@" >>"$log" 2>&1
  fi
  rc=$?
  local secs=$(($(date +%s) - t0))
  if [ $rc -eq 0 ]; then
    note "$name: ok (${secs}s)"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    note "$name: FAILED: timed out after ${limit}s (log: $(basename "$log"))"
    failed=1
  else
    note "$name: FAILED: exit $rc after ${secs}s (log: $(basename "$log"))"
    failed=1
  fi
  return $rc
}

# ---- the GPU -----------------------------------------------------------------
if [ $configure_only -eq 0 ]; then
  if ! command -v nvidia-smi >/dev/null; then
    note "refusing: no NVIDIA GPU here (nvidia-smi is not installed)"
    exit 2
  fi
  if ! gpus=$(nvidia-smi -L 2>&1) || ! grep -q '^GPU ' <<<"$gpus"; then
    note "refusing: no NVIDIA GPU here (nvidia-smi -L: $(head -1 <<<"$gpus"))"
    exit 2
  fi
  note "GPUs: $(paste -sd';' <<<"$gpus")"
  note "driver: $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"
fi
if [ -z "$arch" ]; then
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null |
    tr -d ' .' | grep -E '^[0-9]+$' | sort -u | paste -sd';')
  [ -n "$arch" ] || arch=90
fi
note "CUDA architectures: $arch"

# ---- dependencies from --deps ------------------------------------------------
if [ -n "$build" ]; then
  mkdir -p "$build" || die_usage "cannot create --build '$build'"
  build=$(cd "$build" && pwd)
  work=$build/gpu-host-check
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-gpu-check.XXXXXX")
  build=$work/build
fi
mkdir -p "$build" "$work"
cmake_env=()
if [ -n "$deps" ]; then
  # .pc files pointing into PREFIX. Requires.private/Libs.private name
  # modules and static archives needed only for static linking, which are
  # not fetched: drop them.
  pcdir=$work/pkgconfig
  mkdir -p "$pcdir"
  for pc in "$deps"/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc \
    "$deps"/usr/share/pkgconfig/*.pc; do
    [ -e "$pc" ] || continue
    sed -e "s|^prefix=/usr\$|prefix=$deps/usr|" \
      -e "s|=/usr/|=$deps/usr/|" \
      -e '/^Requires.private:/d' -e '/^Libs.private:/d' \
      "$pc" >"$pcdir/$(basename "$pc")"
  done
  # Shared libraries the host lacks, by soname; the host's own are never
  # shadowed (they may be newer than Debian's).
  libdir=$work/deps-lib
  mkdir -p "$libdir"
  ldconfig_bin=$(command -v ldconfig || echo /sbin/ldconfig)
  have=$("$ldconfig_bin" -p 2>/dev/null | awk '{print $1}' | sort -u)
  for lib in "$deps"/usr/lib/x86_64-linux-gnu/*.so.* \
    "$deps"/lib/x86_64-linux-gnu/*.so.*; do
    [ -e "$lib" ] || continue
    base=$(basename "$lib")
    # Only names the loader asks for (sonames), not the files behind them.
    soname=$(readelf -d "$lib" 2>/dev/null |
      sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
    [ -z "$soname" ] || [ "$soname" = "$base" ] || continue
    if ! grep -qxF "$base" <<<"$have"; then
      ln -sf "$lib" "$libdir/$base"
    fi
  done
  export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export CPATH="$deps/usr/include${CPATH:+:$CPATH}"
  export CMAKE_PREFIX_PATH="$deps/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  if ! command -v pkg-config >/dev/null && ! command -v pkgconf >/dev/null; then
    cmake_env+=("-DPKG_CONFIG_EXECUTABLE=$deps/usr/bin/pkgconf")
  fi
  note "dependencies from $deps ($(find "$libdir" -mindepth 1 | wc -l)" \
    "libraries the host lacks)"
fi

# ---- configure and build -----------------------------------------------------
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
step configure 120 "$out/configure.log" \
  cmake -S "$source_dir" -B "$build" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFERRY_ENABLE_CUDA=ON "-DFERRY_CUDA_ARCHITECTURES=$arch" \
  -DFERRY_ENABLE_HIP=OFF -DFERRY_ENABLE_OPENCL=OFF "${cmake_env[@]}" \
  "${extra_cmake[@]}" ||
  {
    note "FAILED (configure); see configure.log"
    exit 1
  }
if [ $configure_only -eq 1 ]; then
  note "configured in $build (--configure-only: stopping here)"
  exit $failed
fi
step build 300 "$out/build.log" \
  cmake --build "$build" -j "${jobs:-$(nproc)}" ||
  {
    note "FAILED (build); see build.log"
    exit 1
  }

# ---- tests -------------------------------------------------------------------
if want ctest && step ctest 300 "$out/ctest.log" \
  ctest --test-dir "$build" -L cuda --output-on-failure --timeout 170; then
  # ctest passes skipped tests; with a GPU here a skip means the plugin did
  # not see it.
  if grep -Eq '\*\*\*Skipped|Not Run' "$out/ctest.log"; then
    note "ctest: FAILED: cuda tests were skipped on a GPU host (see ctest.log)"
    failed=1
  fi
fi
if want ctest && ! grep -Eq 'tests failed out of [1-9]' "$out/ctest.log"; then
  note "ctest: FAILED: no cuda test ran"
  failed=1
fi

# ---- compute-sanitizer ---------------------------------------------------------
# Every cuda test's command line and environment, from ctest itself (the
# benchmark smoke test aside: its timing loops only slow the sanitizer), as
# shell lines running it under `compute-sanitizer --tool TOOL`. The tests
# re-execute themselves once per test case: the sanitizer follows them all.
# shellcheck disable=SC2317 # (called through step)
sanitized_tests() {
  ctest --test-dir "$build" -L cuda -LE bench --show-only=json-v1 |
    python3 -c '
import json, shlex, sys
sanitizer, tool = sys.argv[1], sys.argv[2]
for t in json.load(sys.stdin)["tests"]:
    env, cwd = [], None
    for p in t.get("properties", []):
        if p["name"] == "ENVIRONMENT":
            env = p["value"]
        elif p["name"] == "WORKING_DIRECTORY":
            cwd = p["value"]
    argv = ["env"] + env + [sanitizer, "--tool", tool,
            "--target-processes", "all", "--error-exitcode", "86"] + t["command"]
    line = shlex.join(argv)
    print(("cd " + shlex.quote(cwd) + " && " if cwd else "") + line)
' "$1" "$2"
}
# shellcheck disable=SC2317 # (called through step)
sanitize() {
  local tool=$1 log=$2 rc=0 sanitizer
  sanitizer=$(command -v compute-sanitizer ||
    echo /usr/local/cuda/bin/compute-sanitizer)
  if [ ! -x "$sanitizer" ]; then
    echo "compute-sanitizer not found"
    return 1
  fi
  local lines
  lines=$(sanitized_tests "$sanitizer" "$tool") || return 1
  [ -n "$lines" ] || {
    echo "no cuda tests to run"
    return 1
  }
  while IFS= read -r line; do
    local now
    now=$(date +%s)
    if [ "$now" -ge "$deadline" ]; then
      echo "=== out of time before: $line"
      return 124
    fi
    echo "=== $line"
    timeout --kill-after=10 $((deadline - now)) bash -c "$line" || rc=1
  done <<<"$lines"
  if grep -Eq '(ERROR|RACECHECK) SUMMARY: [1-9]' "$log"; then
    rc=1
  fi
  return "$rc"
}
if [ $sanitizers -eq 1 ]; then
  want memcheck &&
    step memcheck 300 "$out/memcheck.log" sanitize memcheck "$out/memcheck.log"
  want racecheck &&
    step racecheck 240 "$out/racecheck.log" sanitize racecheck "$out/racecheck.log"
fi

# ---- benchmarks --------------------------------------------------------------
if [ $bench -eq 1 ] && want bench; then
  bench_bin=$build/bin/ferry-bench
  if [ -x "$bench_bin" ]; then
    step bench 420 "$out/bench.log" \
      "$bench_bin" --backend cuda --json "$out/bench-cuda.json"
  else
    note "bench: not built (no $bench_bin)"
  fi
fi

note "total $(($(date +%s) - start))s; $([ $failed -eq 0 ] && echo PASSED || echo FAILED)"
exit $failed
