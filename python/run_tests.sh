#!/bin/sh
# Runs the Python binding's tests against a libferry build.
#
#   python/run_tests.sh BUILD_DIR [VENV_DIR] [-- pytest arguments]
#
# Makes VENV_DIR (default BUILD_DIR/python-venv) with the system's packages
# (Debian: python3-venv, python3-numpy, python3-torch, python3-pytest) if it
# is missing, installs ./python into it offline (no build isolation, no
# dependencies: setuptools, numpy, torch and pytest come from the system),
# and runs pytest with FERRY_LIBRARY pointing at BUILD_DIR/lib/libferry.so.
set -eu

usage() { echo "usage: $0 BUILD_DIR [VENV_DIR] [-- pytest args]" >&2; exit 2; }
[ $# -ge 1 ] || usage
build=$(cd "$1" && pwd) || usage
shift
venv="$build/python-venv"
if [ $# -ge 1 ] && [ "$1" != "--" ]; then venv=$1; shift; fi
[ $# -ge 1 ] && [ "$1" = "--" ] && shift

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
lib="$build/lib/libferry.so"
[ -e "$lib" ] || { echo "$0: $lib not found (build the ferry target)" >&2; exit 1; }

python=${FERRY_PYTHON:-/usr/bin/python3}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv --system-site-packages "$venv"
fi
# Install from a copy so that the build leaves nothing in the source tree.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
cp -r "$here/ferry" "$here/pyproject.toml" "$here/README.md" "$tmp/"
"$venv/bin/python" -m pip install --quiet --no-build-isolation --no-deps \
  --no-index --disable-pip-version-check "$tmp" >"$tmp/pip.log" 2>&1 ||
  { cat "$tmp/pip.log" >&2; exit 1; }

export FERRY_LIBRARY="$lib"
export FERRY_INCLUDE_DIR="$repo/include"
export FERRY_REPO="$repo"
# Run from outside the source tree: `import ferry` is the installed package.
cd "$tmp"
rc=0
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$here/tests" "$@" || rc=$?
exit $rc
