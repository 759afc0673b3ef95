#!/usr/bin/env python3
"""Smoke test of ferry-bench: runs `ferry-bench copy --quick` on one backend
and checks the JSON it writes against docs/benchmarks.md. Exits 77 (CTest's
skip) when the backend is not available here.

    check_results.py FERRY_BENCH BACKEND OUT_JSON
"""
import json
import math
import re
import subprocess
import sys

MACHINE_KEYS = ("hostname", "cpu_model", "cores", "memory_bytes", "os",
                "ferry_version", "git_commit", "date", "llc_bytes", "backends")
RECORD_KEYS = ("op", "backend", "device", "method", "params", "reps",
               "median_s", "gbps", "limit_gbps", "ratio", "judged")
COPY_METHODS = {"host_memcpy_1thread", "host_memcpy_pool", "h2d", "d2h", "d2d",
                "h2d_pageable", "d2h_pageable"}


def fail(msg):
    print(f"check_results: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    exe, backend, out = sys.argv[1:4]
    run = subprocess.run([exe, "copy", "--quick", "--backend", backend,
                          "--json", out], capture_output=True, text=True)
    sys.stdout.write(run.stdout)
    sys.stderr.write(run.stderr)
    if run.returncode == 3:
        print(f"backend {backend} is not available here: skipped")
        sys.exit(77)
    if run.returncode != 0:
        fail(f"ferry-bench exited {run.returncode}")

    with open(out) as f:
        doc = json.load(f)
    if set(doc) != {"machine", "results"}:
        fail(f"top-level keys {sorted(doc)}")
    machine = doc["machine"]
    for key in MACHINE_KEYS:
        if key not in machine:
            fail(f"machine lacks '{key}'")
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", machine["date"]):
        fail(f"date '{machine['date']}' is not UTC ISO 8601")
    if machine["cores"] < 1 or machine["memory_bytes"] < 1:
        fail("machine cores/memory not positive")
    if not any(b["name"] == backend for b in machine["backends"]):
        fail(f"machine.backends does not list {backend}")

    results = doc["results"]
    methods = {r.get("method") for r in results}
    if methods != COPY_METHODS:
        fail(f"methods {sorted(methods)}, expected {sorted(COPY_METHODS)}")
    llc = machine["llc_bytes"]
    for r in results:
        for key in RECORD_KEYS:
            if key not in r:
                fail(f"record {r.get('method')} lacks '{key}'")
        where = f"{r['method']}"
        if r["op"] != "copy" or r["backend"] != backend or not r["device"]:
            fail(f"{where}: op/backend/device {r['op']}/{r['backend']}/"
                 f"{r['device']}")
        p = r["params"]
        least = 1 if r["method"].startswith("host_memcpy") else 0
        if p.get("bytes", 0) <= 0 or p.get("threads", -1) < least:
            fail(f"{where}: params {p}")
        if not (r["median_s"] > 0 and r["gbps"] > 0 and r["reps"] >= 1):
            fail(f"{where}: median_s {r['median_s']} gbps {r['gbps']}")
        expect = p["bytes"] / r["median_s"] / 1e9
        if not math.isclose(r["gbps"], expect, rel_tol=1e-6):
            fail(f"{where}: gbps {r['gbps']} != bytes/median_s {expect}")
        if r["judged"] != (p["bytes"] >= 4 * llc):
            fail(f"{where}: judged {r['judged']} with {p['bytes']} bytes, "
                 f"LLC {llc}")
        if r["method"].startswith("host_memcpy") and r["limit_gbps"] is None:
            fail(f"{where}: a host memcpy record without a limit")
        if r["limit_gbps"] is None:
            if r["ratio"] is not None:
                fail(f"{where}: a ratio without a limit")
        elif not math.isclose(r["ratio"], r["gbps"] / r["limit_gbps"],
                              rel_tol=1e-6):
            fail(f"{where}: ratio {r['ratio']} != gbps/limit_gbps")
    best = max(r["gbps"] for r in results
               if r["method"].startswith("host_memcpy"))
    for r in results:
        if r["limit_gbps"] is not None and not math.isclose(
                r["limit_gbps"], best, rel_tol=1e-6):
            fail(f"{r['method']}: limit {r['limit_gbps']} is not the best "
                 f"host memcpy {best}")
    print(f"check_results: {len(results)} records ok")


if __name__ == "__main__":
    main()
