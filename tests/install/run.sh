#!/usr/bin/env bash
# The install test: install the already-built tree into a fresh prefix, move
# the prefix (the package files must not remember where they were
# installed), then build tests/install/consumer against it twice -- with
# CMake's find_package(ferry) and with pkg-config -- and run both.
#
#   run.sh BUILD_DIR CONSUMER_SRC WORK_DIR C_COMPILER [SANITIZERS]
set -euo pipefail

build=$1 consumer=$2 work=$3 cc=$4 sanitize=${5:-}

fail() { echo "install test: $*" >&2; exit 1; }

# Neither the consumer's loader nor its linker may see the build tree.
unset FERRY_PLUGIN_PATH FERRY_BACKEND LD_LIBRARY_PATH PKG_CONFIG_PATH
flags=()
[[ -n $sanitize ]] && flags=("-fsanitize=$sanitize")

rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/installed" >"$work/install.log" ||
  { cat "$work/install.log"; fail "cmake --install failed"; }
mv "$work/installed" "$work/prefix"
prefix=$work/prefix

# What must (and must not) be installed.
[[ -f $prefix/include/ferry/ferry.h ]] || fail "include/ferry/ferry.h missing"
if found=$(find "$prefix" -iname 'dlpack*.h' | grep .); then
  fail "a DLPack header was installed: $found"
fi
pc=$(find "$prefix" -name ferry.pc -path '*/pkgconfig/*' | head -n1)
config=$(find "$prefix" -name ferryConfig.cmake | head -n1)
[[ -n $pc ]] || fail "ferry.pc not installed"
[[ -n $config ]] || fail "ferryConfig.cmake not installed"
[[ -f $(dirname "$config")/ferryConfigVersion.cmake ]] ||
  fail "ferryConfigVersion.cmake not installed"
libdir=$(dirname "$(dirname "$pc")")
soname=$(objdump -p "$libdir/libferry.so" | awk '/SONAME/ {print $2}')
[[ $soname =~ ^libferry\.so\.[0-9]+$ ]] || fail "libferry's SONAME is '$soname'"
[[ -e $libdir/$soname ]] || fail "$soname missing from $libdir"

# Runs a consumer and checks it used the installed library and plugins.
check_run() {
  local exe=$1 out
  out=$("$exe") || fail "$exe failed: $out"
  echo "$out" | sed "s|^|  $(basename "$exe"): |"
  grep -qx 'backend: cpu' <<<"$out" || fail "$exe did not run the cpu backend"
  grep -qx 'copy: ok' <<<"$out" || fail "$exe did not finish"
  local name path lib
  while read -r _ name path; do
    [[ $path == "(built in)" ]] && continue
    [[ $(realpath "$path") == "$(realpath "$prefix")"/* ]] ||
      fail "$exe found plugin $name at $path, outside the installed prefix"
  done < <(grep '^plugin: ' <<<"$out")
  lib=$(ldd "$exe" | awk '/libferry\.so/ {print $3}')
  [[ $(realpath "$lib") == "$(realpath "$libdir")"/* ]] ||
    fail "$exe resolved libferry to '$lib', not the installed one"
}

echo "-- find_package(ferry)"
cmake -S "$consumer" -B "$work/cmake-consumer" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="${flags[*]:-}" \
  -DCMAKE_EXE_LINKER_FLAGS="${flags[*]:-}" >"$work/cmake-consumer.log" 2>&1 ||
  { cat "$work/cmake-consumer.log"; fail "configuring the CMake consumer failed"; }
cmake --build "$work/cmake-consumer" >>"$work/cmake-consumer.log" 2>&1 ||
  { cat "$work/cmake-consumer.log"; fail "building the CMake consumer failed"; }
check_run "$work/cmake-consumer/consumer"

echo "-- pkg-config ferry"
export PKG_CONFIG_PATH=$libdir/pkgconfig
read -ra pc_cflags <<<"$(pkg-config --cflags ferry)"
read -ra pc_libs <<<"$(pkg-config --libs ferry)"
pc_libdir=$(pkg-config --variable=libdir ferry)
[[ $(realpath "$pc_libdir") == "$(realpath "$libdir")" ]] ||
  fail "ferry.pc's libdir '$pc_libdir' is not the (moved) prefix's"
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror "${flags[@]}" "${pc_cflags[@]}" \
  "$consumer/consumer.c" -o "$work/pkg-config-consumer" "${pc_libs[@]}" \
  "-Wl,-rpath,$pc_libdir" || fail "building the pkg-config consumer failed"
check_run "$work/pkg-config-consumer"

# The installed tools find the installed libferry through their rpath.
for tool in "ferry-bench --list" "ferry-info"; do
  read -ra cmd <<<"$tool"
  [[ -x $prefix/bin/${cmd[0]} ]] || continue
  echo "-- installed $tool"
  "$prefix/bin/${cmd[0]}" "${cmd[@]:1}" >"$work/${cmd[0]}.log" 2>&1 ||
    { cat "$work/${cmd[0]}.log"; fail "the installed ${cmd[0]} does not run"; }
  lib=$(ldd "$prefix/bin/${cmd[0]}" | awk '/libferry\.so/ {print $3}')
  [[ $(realpath "$lib") == "$(realpath "$libdir")"/* ]] ||
    fail "${cmd[0]} resolved libferry to '$lib', not the installed one"
done
echo "install test: ok"
