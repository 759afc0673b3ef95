#!/usr/bin/env bash
# gpu-deps-fetch.sh: fetch what ferry's build and tests need beyond a CUDA
# machine's own software (hwloc, Criterion, pkg-config), for a GPU host that
# reaches no network. Run it HERE, on Debian 12 with its package mirror:
#
#   tools/gpu-deps-fetch.sh [DIR]        (default DIR: _deps, git-ignored)
#
# It downloads the Debian packages with `apt-get download` (no root, nothing
# installed) and unpacks each with `dpkg -x` into DIR, so that DIR/usr holds
# the headers, libraries and .pc files; the .debs stay in DIR/debs and the
# package list with versions in DIR/MANIFEST. Carry DIR to the GPU host and
# give it to tools/gpu-host-check.sh --deps DIR.
#
# What is fetched: libhwloc-dev and libcriterion-dev (headers, .so links,
# .pc files), and the shared libraries they and pkgconf need at run time,
# found with `apt-cache depends --recurse` (minus glibc and libgcc, which
# every host has). gpu-host-check.sh later uses only those the host lacks.
set -euo pipefail

usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
}

dest=_deps
case "${1:-}" in
-h | --help)
  usage
  exit 0
  ;;
-*)
  echo "gpu-deps-fetch: unknown option $1" >&2
  usage >&2
  exit 2
  ;;
"") ;;
*) dest=$1 ;;
esac
if [ $# -gt 1 ]; then
  echo "gpu-deps-fetch: one directory, not $#" >&2
  exit 2
fi

for tool in apt-get apt-cache dpkg; do
  if ! command -v "$tool" >/dev/null; then
    echo "gpu-deps-fetch: $tool not found: run this on Debian (12, bookworm)" >&2
    exit 1
  fi
done

# Packages whose run-time closure is needed, and the -dev packages on top.
runtime_roots=(libhwloc15 libcriterion3 pkgconf-bin)
dev_packages=(libhwloc-dev libcriterion-dev)
# Present on every glibc system (the host's own copies must be used).
base_re='^(libc6|libgcc-s1|gcc-[0-9]+-base|libcrypt1)$'

closure=$(apt-cache depends --recurse --no-recommends --no-suggests \
  --no-conflicts --no-breaks --no-replaces --no-enhances \
  "${runtime_roots[@]}" | grep -v '^ ' | grep -v '^<' | sort -u |
  grep -Ev "$base_re" || true)
if [ -z "$closure" ]; then
  echo "gpu-deps-fetch: apt-cache found no packages (try: apt-get update)" >&2
  exit 1
fi
# shellcheck disable=SC2206
packages=($closure "${dev_packages[@]}")

mkdir -p "$dest/debs"
dest=$(cd "$dest" && pwd)
echo "gpu-deps-fetch: downloading ${#packages[@]} packages into $dest/debs"
if ! (cd "$dest/debs" && apt-get download -q "${packages[@]}"); then
  echo "gpu-deps-fetch: apt-get download failed (stale package lists? try:" \
    "apt-get update)" >&2
  exit 1
fi

: >"$dest/MANIFEST"
for deb in "$dest"/debs/*.deb; do
  dpkg -x "$deb" "$dest"
  # shellcheck disable=SC2016 # dpkg-deb expands these, not the shell
  dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb" >>"$dest/MANIFEST"
done
# Documentation and static archives are of no use on the GPU host and only
# add to what travels.
rm -rf "$dest/usr/share/doc" "$dest/usr/share/man" "$dest/usr/share/lintian"
find "$dest/usr/lib" -name '*.a' -delete

for need in usr/include/hwloc.h usr/include/criterion/criterion.h \
  usr/lib/x86_64-linux-gnu/pkgconfig/hwloc.pc \
  usr/lib/x86_64-linux-gnu/pkgconfig/criterion.pc usr/bin/pkgconf; do
  if [ ! -e "$dest/$need" ]; then
    echo "gpu-deps-fetch: $need is missing after unpacking" >&2
    exit 1
  fi
done
echo "gpu-deps-fetch: unpacked $(wc -l <"$dest/MANIFEST") packages into" \
  "$dest ($(du -sh "$dest" | cut -f1)); see $dest/MANIFEST"
