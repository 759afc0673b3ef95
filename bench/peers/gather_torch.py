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
import sys

import torch

import _report

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def main():
    a = _report.parse_args(__doc__, backend_option=False)
    _, path, results = _report.ferry_results(a, "gather")
    gathers = [r for r in results if r["method"] == "host"]
    if not gathers:
        sys.exit("no cpu gather results in %s" % path)
    limits = {}
    for r in results:
        if r["method"] == "limit_pool_copy":
            p = r["params"]
            limits[(p["row_bytes"], p["dtype"], p["n"])] = r["gbps"]
    _report.use_ferry_threads(gathers)
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
        t_torch = _report.median_time(
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
        _report.write_json(a.out, {"torch": torch.__version__,
                                   "threads": torch.get_num_threads(),
                                   "results": out_rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
