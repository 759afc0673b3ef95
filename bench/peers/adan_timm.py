#!/usr/bin/env python3
"""timm's Adan as the peer of `ferry-bench adan` (docs/adan.md).

Times timm.optim.Adan's step over PyTorch on the sizes ferry-bench measured
(one tensor, and 200 tensors in the same ResNet/ViT-like profile as
bench/adan.c), with as many threads as ferry's worker pool, and prints each
case's time ratio ferry / timm (below 1: ferry is faster). timm's Adan has
no clipping: the _clip cases run torch.nn.utils.clip_grad_norm_ (global
norm, max 1.0; it writes the gradients in place, which ferry does not)
and then the step, which is what a timm user runs.

  adan_timm.py --json out.json              read ferry-bench's results
  adan_timm.py --ferry-bench PATH [--quick] [--backend cpu]
                                            run ferry-bench first
  --out peer.json                           also write the peer's times

Needs torch and timm (tested: Debian's python3-torch 1.13 with timm 0.9.16
from PyPI in a venv made with --system-site-packages). Each timing is the
median of --reps steps after warm-up steps.
"""
import platform
import sys

import torch

import _report

try:
    import timm
    from timm.optim import Adan
except ImportError as e:  # the peer is optional: say so and stop
    sys.exit("timm is not importable (%s): pip install 'timm==0.9.16'" % e)

MULTI_TENSORS = 200


def profile(total, n=MULTI_TENSORS):
    """The tensor sizes of bench/adan.c's profile() (same arithmetic)."""
    w = []
    for i in range(n):
        if i % 3 == 2:
            w.append(0.0)
        elif i % 20 == 0:
            w.append(40.0 + (i % 7))
        else:
            w.append(1.0 + ((i * 37) % 11))
    s = sum(w)
    small = 384
    used = sum(small for x in w if x == 0.0)
    rest = total - used if total > used else n
    lens, acc, last = [], 0, -1
    for i, x in enumerate(w):
        ln = small if x == 0.0 else int(rest * x / s)
        ln = max(ln, 1)
        lens.append(ln)
        acc += ln
        if x != 0.0:
            last = i
    if last >= 0 and acc < total:
        lens[last] += total - acc
    return lens


def timm_case(params, tensors, clip, reps):
    sizes = [params] if tensors == 1 else profile(params, tensors)
    ps = [torch.nn.Parameter(torch.full((n,), 0.0115)) for n in sizes]
    for p in ps:
        p.grad = torch.full_like(p, 7e-4)
    opt = Adan(ps, lr=1e-3, weight_decay=0.02)

    def step():
        if clip:
            torch.nn.utils.clip_grad_norm_(ps, 1.0)
        opt.step()

    return _report.median_time(step, reps)


def main():
    a = _report.parse_args(__doc__)
    data, path, results = _report.ferry_results(a, "adan")
    if not results:
        sys.exit("no adan results for backend %s in %s" % (a.backend, path))
    _report.use_ferry_threads(results)
    machine = data.get("machine", {})
    print("machine: %s (%s cores); torch %s, timm %s, %d threads" %
          (machine.get("cpu_model", platform.processor()),
           machine.get("cores", "?"), torch.__version__, timm.__version__,
           torch.get_num_threads()))
    print("ratio = ferry time / timm time (< 1: ferry faster)")
    print("%-20s %10s %7s %12s %12s %8s" %
          ("method", "params", "tensors", "ferry ms", "timm ms", "ratio"))
    rows = []
    for r in results:
        p = r["params"]
        clip = r["method"].endswith("_clip")
        t_timm = timm_case(int(p["params"]), int(p["tensors"]), clip, a.reps)
        t_ferry = float(r["median_s"])
        ratio = t_ferry / t_timm
        print("%-20s %10d %7d %12.3f %12.3f %8.3f" %
              (r["method"], p["params"], p["tensors"], t_ferry * 1e3,
               t_timm * 1e3, ratio))
        rows.append({"method": r["method"], "params": p["params"],
                     "tensors": p["tensors"], "ferry_s": t_ferry,
                     "timm_s": t_timm, "ratio": ratio})
    worst = max(rows, key=lambda x: x["ratio"])
    print("slowest relative to timm: %.3f (%s, %d params): ferry is %.1fx "
          "faster" % (worst["ratio"], worst["method"], worst["params"],
                      1.0 / worst["ratio"]))
    if a.out:
        _report.write_json(a.out, {"torch": torch.__version__,
                                   "timm": timm.__version__,
                                   "threads": torch.get_num_threads(),
                                   "machine": machine, "results": rows})


if __name__ == "__main__":
    main()
