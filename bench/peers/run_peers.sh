#!/usr/bin/env bash
# Runs the peers of ferry-bench's results on the same shapes and prints the
# time ratios: PyTorch's index_select (gather), layer_norm (LayerNorm and
# RMSNorm) and timm's Adan, on the cpu (Debian's python3-torch 1.13).
#
#   bench/peers/run_peers.sh RESULTS.json OUT_DIR
#
# timm comes from PyPI (pinned: 0.9.16 works with torch 1.13) into a venv
# OUT_DIR/peers-venv that sees the system's torch and torchvision. A peer
# that cannot run here is reported and skipped; the others still run.
set -uo pipefail
results=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
python=${FERRY_PYTHON:-/usr/bin/python3}
venv=$out/peers-venv
# Medians of 5: PyTorch's cpu RMSNorm backward takes half a second a call
# on the larger shapes, and the peers should not triple the run.
reps=${FERRY_PEER_REPS:-5}
rc=0

if ! "$python" -c 'import torch' 2>/dev/null; then
  echo "peers: skipped: $python cannot import torch (Debian: python3-torch)"
  exit 0
fi
for peer in gather_torch layernorm_torch; do
  echo "--- peer $peer"
  "$python" "$here/$peer.py" --json "$results" --reps "$reps" \
    --out "$out/peer-$peer.json" || rc=1
done

echo "--- peer adan_timm"
if [[ ! -x $venv/bin/python ]]; then
  "$python" -m venv --system-site-packages "$venv"
fi
if ! "$venv/bin/python" -c 'import timm' 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    'timm==0.9.16' >"$out/peers-pip.log" 2>&1 ||
    echo "peers: timm could not be installed (see $out/peers-pip.log)"
fi
if "$venv/bin/python" -c 'import timm' 2>/dev/null; then
  "$venv/bin/python" "$here/adan_timm.py" --json "$results" --reps "$reps" \
    --out "$out/peer-adan_timm.json" || rc=1
else
  echo "peers: adan_timm skipped: timm is not importable"
fi
exit $rc
