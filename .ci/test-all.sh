#!/usr/bin/env bash
# Runs every ferry test: installs the Debian packages (as root), configures
# with every backend whose toolchain is present, builds, runs CTest, then the
# Python binding's tests (pytest, in a venv under the build directory).
# Backends without a device here are skipped visibly (CTest "Not Run").
#
#   bash .ci/test-all.sh          (build directory: build/, or $FERRY_BUILD_DIR)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
build=${FERRY_BUILD_DIR:-$ferry_src/build}
export POCL_CACHE_DIR=$build/pocl-cache

stage deps ferry_install_deps
stage configure ferry_configure "$build"
stage build ferry_build "$build"
stage test ctest --test-dir "$build" --output-on-failure -j2
stage python bash "$ferry_src/python/run_tests.sh" "$build"
