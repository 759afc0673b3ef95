#!/usr/bin/python3
"""PyTorch as the peer of `ferry-bench layernorm` (docs/norm.md).

Runs torch.nn.functional.layer_norm and RMSNorm (written in torch as
x * rsqrt(mean(x^2) + eps) * weight: torch 1.13 has no rms_norm), forward
and backward, on the shapes and dtypes ferry-bench measured, with as many
threads as ferry's worker pool, and prints each shape's time ratio
ferry / torch (below 1: ferry is faster), and that ratio normalised by
each side's copy of the same bytes timed alongside it (ferry-bench's limit;
torch's dst.copy_(src) here), which holds when the machine's load changes
between ferry's run and torch's.

  layernorm_torch.py --json out.json            read ferry-bench's results
  layernorm_torch.py --ferry-bench PATH [--quick] [--backend cpu]
                                                 run ferry-bench first
  --out peer.json                                also write the peer's times

Inputs rotate over as many sets as ferry-bench used for the case (except
RMSNorm's backward through autograd).

Backward in torch: LayerNorm through aten.native_layer_norm_backward (the
kernel autograd calls, without autograd's bookkeeping), RMSNorm through
autograd on the composed expression (what a torch 1.13 user runs). Inputs
are random; each timing is the median of --reps runs after a warm-up.
"""
import statistics
import sys
import time

import torch

import _report

EPS = 1e-5


def median_time(fn, reps, warmup=2):
    """Median time of fn; each run alternates with a run of the copy set by
    set_copy (when one is set), whose median goes to LAST_COPY[0]: both
    see the same state of a shared machine, as in ferry-bench."""
    for _ in range(warmup):
        fn()
    ts, tc = [], []
    for _ in range(reps):
        if COPY[0] is not None:
            t0 = time.perf_counter()
            COPY[0]()
            tc.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    LAST_COPY[0] = statistics.median(tc) if tc else None
    return statistics.median(ts)


COPY = [None]
LAST_COPY = [None]


def set_copy(nbytes):
    """torch's own copy of nbytes (dst.copy_(src), parallel over the same
    threads): the limit the torch timing is judged against."""
    if nbytes <= 0:
        COPY[0] = None
        return
    src = torch.ones(nbytes, dtype=torch.uint8)
    dst = torch.zeros(nbytes, dtype=torch.uint8)
    COPY[0] = lambda: dst.copy_(src)


def torch_case(kind, direction, rows, cols, dtype, reps, sets=1):
    """Median seconds of one case; `sets` input sets used in turn (as
    ferry-bench rotates its buffers), so that no call starts with its
    inputs in the cache."""
    dt = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype]
    xs = [torch.randn(rows, cols, dtype=dt) for _ in range(sets)]
    dys = [torch.randn(rows, cols, dtype=dt) for _ in range(sets)]
    x, dy = xs[0], dys[0]
    w = torch.ones(cols, dtype=torch.float32).to(dt)
    b = torch.zeros(cols, dtype=torch.float32).to(dt)
    turn = [0]

    def nxt():
        turn[0] = (turn[0] + 1) % sets
        return turn[0]

    with torch.no_grad():
        if kind == "layer" and direction == "fwd":
            return median_time(
                lambda: torch.nn.functional.layer_norm(xs[nxt()], (cols,), w,
                                                       b, EPS), reps)
        if kind == "layer":
            stats = [torch.ops.aten.native_layer_norm(xi, (cols,), w, b,
                                                      EPS)[1:] for xi in xs]

            def bwd():
                i = nxt()
                return torch.ops.aten.native_layer_norm_backward(
                    dys[i], xs[i], (cols,), stats[i][0], stats[i][1], w, b,
                    [True, True, True])
            return median_time(bwd, reps)
        if direction == "fwd":
            def rms_fwd():
                xi = xs[nxt()]
                return xi * torch.rsqrt(xi.float().pow(2).mean(
                    -1, keepdim=True) + EPS).to(dt) * w
            return median_time(rms_fwd, reps)
    xr = x.clone().requires_grad_(True)
    wr = w.clone().requires_grad_(True)

    def rms_bwd():
        y = xr * torch.rsqrt(xr.float().pow(2).mean(-1, keepdim=True) +
                             EPS).to(dt) * wr
        y.backward(dy)
        xr.grad = None
        wr.grad = None

    # The forward is part of each call here: time it alone and subtract.
    full = median_time(rms_bwd, reps)
    with torch.no_grad():
        fwd = median_time(
            lambda: xr * torch.rsqrt(xr.float().pow(2).mean(
                -1, keepdim=True) + EPS).to(dt) * wr, reps)
    return max(full - fwd, 1e-9)


def main():
    a = _report.parse_args(__doc__)
    _, path, results = _report.ferry_results(a, "layernorm")
    if not results:
        sys.exit("no layernorm results for backend %s in %s" %
                 (a.backend, path))
    _report.use_ferry_threads(results)
    print("torch %s, %d threads; ratio = ferry time / torch time "
          "(< 1: ferry faster)" % (torch.__version__, torch.get_num_threads()))
    print("norm = ratio x (torch copy / ferry copy), each copy of the op's "
          "bytes timed alongside its op")
    print("%-16s %8s %6s %12s %12s %8s %8s" %
          ("method", "rows", "cols", "ferry ms", "torch ms", "ratio", "norm"))
    rows_out = []
    worst = 0.0
    for r in results:
        kind, direction, dtype = r["method"].split("_")
        p = r["params"]
        set_copy(int(p.get("bytes", 0)) // 2)
        t_torch = torch_case(kind, direction, int(p["rows"]), int(p["cols"]),
                             dtype, a.reps, int(p.get("sets", 1)))
        t_ferry = r["median_s"]
        ratio = t_ferry / t_torch
        worst = max(worst, ratio)
        # Each side against its own copy of the same bytes timed alongside
        # it: robust to the load changing between ferry's run and torch's.
        t_copy_torch = LAST_COPY[0]
        t_copy_ferry = (r["median_s"] * r["gbps"] / r["limit_gbps"]
                        if r.get("limit_gbps") else None)
        norm = (ratio * t_copy_torch / t_copy_ferry
                if t_copy_torch and t_copy_ferry else float("nan"))
        print("%-16s %8d %6d %12.3f %12.3f %8.2f %8.2f" %
              (r["method"], int(p["rows"]), int(p["cols"]), t_ferry * 1e3,
               t_torch * 1e3, ratio, norm))
        rows_out.append({"method": r["method"], "rows": int(p["rows"]),
                         "cols": int(p["cols"]), "ferry_s": t_ferry,
                         "torch_s": t_torch, "ratio": ratio,
                         "torch_copy_s": t_copy_torch,
                         "ferry_copy_s": t_copy_ferry,
                         "ratio_copy_normalised": norm})
    print("slowest relative to torch: %.2f (%s)" %
          (worst, "ferry no slower everywhere" if worst <= 1.0
           else "ferry slower somewhere"))
    if a.out:
        _report.write_json(a.out, {"torch": torch.__version__,
                                   "threads": torch.get_num_threads(),
                                   "results": rows_out})
    return 0


if __name__ == "__main__":
    sys.exit(main())
