"""What the peers of ferry-bench share (gather_torch.py, layernorm_torch.py,
adan_timm.py import it from their own directory): the command line, reading
ferry-bench's results (or running it first), matching ferry's thread count,
timing, and writing the peer's own JSON.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import torch


def parse_args(doc, backend_option=True):
    """The peers' one command line (each script's docstring is its help);
    without backend_option there is no --backend and the backend is cpu."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", help="ferry-bench results to compare with")
    ap.add_argument("--ferry-bench", help="run this ferry-bench first")
    if backend_option:
        ap.add_argument("--backend", default="cpu")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--out", help="write the peer's times and ratios here")
    a = ap.parse_args()
    if a.json is None and a.ferry_bench is None:
        ap.error("give --json or --ferry-bench")
    if not backend_option:
        a.backend = "cpu"
    return a


def ferry_results(a, op):
    """ferry-bench's results for `op` on a.backend, read from a.json, after
    running a.ferry_bench first when given (into a temporary file without
    --json). Returns the whole JSON, its path and those results."""
    path = a.json
    if a.ferry_bench:
        path = path or os.path.join(tempfile.mkdtemp(), op + ".json")
        cmd = [a.ferry_bench, op, "--backend", a.backend, "--json", path]
        if a.quick:
            cmd.append("--quick")
        subprocess.run(cmd, check=True)
    with open(path) as f:
        data = json.load(f)
    results = [r for r in data["results"]
               if r.get("op") == op and r.get("backend") == a.backend]
    return data, path, results


def use_ferry_threads(results):
    """torch gets as many threads as ferry's worker pool had (the most any
    of the results reports), so that both sides use the same cores."""
    threads = max(int(r["params"].get("threads", 1)) for r in results)
    torch.set_num_threads(max(threads, 1))


def median_time(fn, reps, warmup=2):
    """Median seconds of fn over reps calls after warmup untimed ones."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def write_json(path, obj):
    """The peer's own times and ratios (--out), one file per peer."""
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
