#!/usr/bin/python3
"""A PyTorch GraphSAGE training step, to supply `ferry-bench epoch` with the
model's rate on a GPU host (docs/benchmarks.md, "epoch").

Builds blocks shaped like a batch of ferry-bench epoch's (1024 seeds,
fanouts 15,10,5 on its R-MAT graph: the block sizes below),
runs forward + backward of a 3-layer GraphSAGE (128 -> 256 -> 256 -> 172,
mean aggregation by index_add_, separate self and neighbour Linear layers,
as DGL's SAGEConv) on the chosen device, and divides the FLOPs of
bench/epoch_model.c's model by the median step time. Prints the rate and
the line to export:

  epoch_graphsage.py [--device cuda] [--reps 20]
  export FERRY_BENCH_EPOCH_GFLOPS=<printed value>; ferry-bench epoch

The rate counts the model's FLOPs only; what the step spends elsewhere
(activations, the loss, index_add_'s atomics) lowers it, so the busy period
ferry-bench derives from it matches this step's measured time.
"""
import argparse
import statistics
import time

import torch

HIDDEN, CLASSES, IN = 256, 172, 128
# (num_dst, num_src, num_edges) of blocks 0, 1, 2: the first batch of
# ferry-bench epoch's default run (R-MAT scale 19, batch 1024), as its
# "# epoch: first batch" line prints them.
DEFAULT_BLOCKS = [(13408, 59262, 174656), (2649, 13408, 18365),
                  (1024, 2649, 1835)]


def model_flops(blocks):
    """The FLOP model of bench/epoch_model.c (epoch_model_flops)."""
    total = 0.0
    for l, (d, _, e) in enumerate(blocks):
        fin = IN if l == 0 else HIDDEN
        fout = CLASSES if l == len(blocks) - 1 else HIDDEN
        agg, gemm = e * fin, 4.0 * d * fin * fout
        total += agg + gemm + agg + gemm + (gemm if l > 0 else 0)
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available()
                    else "cpu")
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    dev = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    blocks = DEFAULT_BLOCKS
    dims = [IN, HIDDEN, HIDDEN, CLASSES]
    lin = [(torch.nn.Linear(dims[l], dims[l + 1]).to(dev),
            torch.nn.Linear(dims[l], dims[l + 1], bias=False).to(dev))
           for l in range(3)]
    edges = []
    for d, s, e in blocks:
        dst = torch.randint(0, d, (e,), generator=g).to(dev)
        src = torch.randint(0, s, (e,), generator=g).to(dev)
        deg = torch.bincount(dst, minlength=d).clamp(min=1).float()
        edges.append((dst, src, deg.unsqueeze(1).to(dev)))
    x0 = torch.randn(blocks[0][1], IN, generator=g).to(dev)
    labels = torch.randint(0, CLASSES, (blocks[2][0],), generator=g).to(dev)
    params = [p for pair in lin for m in pair for p in m.parameters()]

    def step():
        h = x0
        for l, ((d, _, _), (dst, src, deg)) in enumerate(zip(blocks, edges)):
            agg = torch.zeros(d, h.shape[1], device=dev)
            agg = agg.index_add(0, dst, h[src]) / deg
            h = lin[l][0](h[:d]) + lin[l][1](agg)
            if l < 2:
                h = torch.relu(h)
        loss = torch.nn.functional.cross_entropy(h, labels)
        for p in params:
            p.grad = None
        loss.backward()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    sync()
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    gflops = model_flops(blocks) / t / 1e9
    name = (torch.cuda.get_device_name(dev) if dev.type == "cuda"
            else f"cpu, {torch.get_num_threads()} threads")
    print(f"GraphSAGE step on {name}: {t * 1e3:.2f} ms for "
          f"{model_flops(blocks) / 1e9:.2f} GFLOP of the model: "
          f"{gflops:.1f} GFLOP/s")
    print(f"export FERRY_BENCH_EPOCH_GFLOPS={gflops:.1f}")


if __name__ == "__main__":
    main()
