#!/usr/bin/python3
"""PyTorch as the peer of `ferry-bench gather` on the cpu (docs/table.md).

Times torch.index_select(table, 0, ids, out=out) on the shapes ferry-bench
measured (row width, dtype, batch n, table rows: the same table of >= 4x
the LLC), with as many threads as ferry's worker pool, and prints per shape:
ferry's and torch's GB/s, the ratio ferry time / torch time (below 1: ferry
faster), and both against the pool-copy limit ferry-bench measured in its
run (torch's ratio to that limit is comparable to ferry's, though measured
minutes apart on a shared machine).

  gather_torch.py --json out.json               read ferry-bench's results
  gather_torch.py --ferry-bench PATH [--quick]  run ferry-bench first
  --out peer.json                               also write the peer's times

ids are uniform random int64 (repeats allowed), as in ferry-bench; `out` is
allocated and touched once before timing; each timing is the median of
--reps runs after a warm-up.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def median_time(fn, reps, warmup=2):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", help="ferry-bench results to compare with")
    ap.add_argument("--ferry-bench", help="run this ferry-bench first")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--out", help="write the peer's times and ratios here")
    a = ap.parse_args()
    if a.json is None and a.ferry_bench is None:
        ap.error("give --json or --ferry-bench")
    path = a.json
    if a.ferry_bench:
        path = path or os.path.join(tempfile.mkdtemp(), "gather.json")
        cmd = [a.ferry_bench, "gather", "--backend", "cpu", "--json", path]
        if a.quick:
            cmd.append("--quick")
        subprocess.run(cmd, check=True)
    with open(path) as f:
        data = json.load(f)
    results = [r for r in data["results"]
               if r.get("op") == "gather" and r.get("backend") == "cpu"]
    gathers = [r for r in results if r["method"] == "host"]
    if not gathers:
        sys.exit("no cpu gather results in %s" % path)
    limits = {}
    for r in results:
        if r["method"] == "limit_pool_copy":
            p = r["params"]
            limits[(p["row_bytes"], p["dtype"], p["n"])] = r["gbps"]
    threads = max(int(r["params"].get("threads", 1)) for r in gathers)
    torch.set_num_threads(max(threads, 1))
    print("torch %s, %d threads; ratio = ferry time / torch time "
          "(< 1: ferry faster); vs limit = GB/s / ferry's pool copy"
          % (torch.__version__, torch.get_num_threads()))
    print("%6s %5s %8s %9s %9s %7s %11s %11s" %
          ("row B", "dtype", "n", "ferry GB/s", "torch GB/s", "ratio",
           "ferry/limit", "torch/limit"))
    out_rows = []
    tables = {}
    for r in gathers:
        p = r["params"]
        row_bytes, dtype, n = p["row_bytes"], p["dtype"], p["n"]
        rows = p["table_rows"]
        dt = DTYPES[dtype]
        cols = row_bytes // torch.tensor([], dtype=dt).element_size()
        key = (rows, cols, dtype)
        if key not in tables:
            tables.clear()  # one table at a time: they are >= 4x LLC
            tables[key] = torch.rand(rows, cols).to(dt)
        table = tables[key]
        ids = torch.randint(0, rows, (n,), dtype=torch.int64)
        out = torch.empty(n, cols, dtype=dt)
        out.zero_()
        t_torch = median_time(
            lambda: torch.index_select(table, 0, ids, out=out), a.reps)
        t_ferry = r["median_s"]
        payload = n * row_bytes
        g_torch = payload / t_torch / 1e9
        g_ferry = payload / t_ferry / 1e9
        limit = limits.get((row_bytes, dtype, n))
        fl = g_ferry / limit if limit else float("nan")
        tl = g_torch / limit if limit else float("nan")
        print("%6d %5s %8d %9.2f %9.2f %7.2f %11.2f %11.2f%s" %
              (row_bytes, dtype, n, g_ferry, g_torch, t_ferry / t_torch, fl,
               tl, "" if r.get("judged") else "  (not judged: cached)"))
        out_rows.append({"row_bytes": row_bytes, "dtype": dtype, "n": n,
                         "table_rows": rows, "ferry_s": t_ferry,
                         "torch_s": t_torch, "ratio": t_ferry / t_torch,
                         "limit_gbps": limit, "ferry_vs_limit": fl,
                         "torch_vs_limit": tl,
                         "judged": bool(r.get("judged"))})
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"torch": torch.__version__,
                       "threads": torch.get_num_threads(),
                       "results": out_rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
