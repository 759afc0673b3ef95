#!/usr/bin/env bash
# Checks that every C, C++ (the GPU emulator), CUDA, HIP and OpenCL C source and header follows .clang-format, changing
# nothing. Build trees and VCS data are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -d '' files < <(find . \( -path './build*' -o -path './.git' -o \
  -path './_*' -o -path './out' \) -prune -o \
  -type f \( -name '*.c' -o -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name '*.hip' -o -name '*.cl' \) -print0 | sort -z)
echo "clang-format $(clang-format --version | grep -o '[0-9][0-9.]*' | head -n1): ${#files[@]} files"
if clang-format --dry-run --Werror "${files[@]}" 2>"${TMPDIR:-/tmp}/ferry-format.log"; then
  exit 0
fi
head -n 60 "${TMPDIR:-/tmp}/ferry-format.log" >&2
echo "not formatted (fix with clang-format -i):" >&2
grep -o '^[^:]*:[0-9]*:[0-9]*: error' "${TMPDIR:-/tmp}/ferry-format.log" |
  cut -d: -f1 | sort -u | sed 's/^/  /' >&2
exit 1
