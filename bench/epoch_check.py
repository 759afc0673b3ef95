#!/usr/bin/env python3
"""Smoke test of ferry-bench's end-to-end epoch: runs `ferry-bench epoch
--quick` on one backend and checks its records (docs/benchmarks.md, "epoch").
Exits 77 (CTest's skip) when the backend is not available here.

    epoch_check.py FERRY_BENCH BACKEND OUT_JSON
"""
import json
import math
import subprocess
import sys

PLACEMENTS = ("zerocopy", "staged", "device")


def fail(msg):
    print(f"epoch_check: {msg}", file=sys.stderr)
    sys.exit(1)


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-6)


def main():
    exe, backend, out = sys.argv[1:4]
    run = subprocess.run([exe, "epoch", "--quick", "--backend", backend,
                          "--json", out], capture_output=True, text=True)
    sys.stdout.write(run.stdout)
    sys.stderr.write(run.stderr)
    if run.returncode == 3:
        print(f"backend {backend} is not available here: skipped")
        sys.exit(77)
    if run.returncode != 0:
        fail(f"ferry-bench exited {run.returncode}")
    if "[1/1] epoch on " + backend not in run.stderr:
        fail("no progress line on stderr")
    if "model rate:" not in run.stdout:
        fail("the model's rate was not printed")

    with open(out) as f:
        doc = json.load(f)
    be = [b for b in doc["machine"]["backends"] if b["name"] == backend]
    if not be or not be[0]["devices"] or not be[0]["devices"][0]["name"]:
        fail(f"machine.backends lacks {backend}'s devices")
    recs = {r["method"]: r for r in doc["results"] if r["op"] == "epoch"}
    # cpu runs every placement; elsewhere a placement the loader cannot run
    # is skipped (printed), but zero-copy and device must be there.
    need = PLACEMENTS if backend == "cpu" else ("zerocopy", "device")
    for m in need:
        if m not in recs:
            fail(f"no epoch record for {m}: {sorted(recs)}")
    dev = recs["device"]
    for m, r in recs.items():
        p = r["params"]
        if not (r["median_s"] > 0 and r["gbps"] > 0 and r["reps"] >= 1):
            fail(f"{m}: median_s {r['median_s']} gbps {r['gbps']}")
        if p["batches"] < 1 or p["bytes"] <= 0 or p["edges"] <= 0:
            fail(f"{m}: params {p}")
        if not close(r["gbps"], p["bytes"] / r["median_s"] / 1e9):
            fail(f"{m}: gbps is not bytes / median_s")
        if not close(r["batches_per_s"], p["batches"] / r["median_s"]):
            fail(f"{m}: batches_per_s is not batches / median_s")
        # The model's busy periods are part of every epoch.
        if p["model_ms"] > r["median_s"] * 1e3 * 1.01 + 1:
            fail(f"{m}: model time {p['model_ms']} ms exceeds the epoch")
        limit = recs["staged"] if m == "zerocopy-vs-staged" else dev
        if r["limit_gbps"] is None or not close(r["limit_gbps"], limit["gbps"]):
            fail(f"{m}: limit {r['limit_gbps']} is not {limit['method']}'s")
        if not close(r["ratio"], r["gbps"] / r["limit_gbps"]):
            fail(f"{m}: ratio is not gbps / limit_gbps")
    # Every placement trained the same batches (the same gathered bytes).
    if len({r["params"]["bytes"] for r in recs.values()}) != 1:
        fail("placements gathered different bytes")
    print(f"epoch_check: {len(recs)} records ok")


if __name__ == "__main__":
    main()
