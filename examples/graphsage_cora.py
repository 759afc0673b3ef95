#!/usr/bin/env python3
"""GraphSAGE on Cora with ferry's loader, LayerNorm and Adan.

The model is PyTorch (mean aggregator, 2 layers, hidden 128, LayerNorm);
ferry samples each minibatch's blocks and gathers its input features on a
thread of its own (ferry.Loader), normalises with ferry's fused LayerNorm
(ferry.torch.LayerNorm, an autograd Function) and updates the weights with
ferry's fused Adan (ferry.torch.Adan).

Split: a seeded permutation of the nodes (numpy.random.default_rng(seed)
.permutation(N)); its first 60% train, the next 20% validate, the last 20%
test. Training batches sample fanouts (10, 10); evaluation takes every
neighbor (fanouts -1, -1).

    python3 examples/graphsage_cora.py                     # baseline
    python3 examples/graphsage_cora.py --hard-batches 0.5  # + hard batches

With --hard-batches δ the script trains twice, the baseline (shuffled
batches) and with the hard-batch selector (fixed batches; after the first
pass each round trains the int(δ·B) batches of highest stored loss; the
same number of steps), and reports both runs' test accuracy and the epochs
each took to reach --target-val validation accuracy.
"""

import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import ferry
import ferry.torch as ft

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.normpath(
    os.path.join(HERE, "..", "..", "shared", "data", "graphs", "cora",
                 "cora"))


def mean_aggregate(h, indptr, indices):
    """Mean of h over each destination node's in-edges (CSC: indptr over
    the destination nodes, indices into h's rows); 0 without edges."""
    num_dst = indptr.shape[0] - 1
    deg = indptr[1:] - indptr[:-1]
    dst = torch.repeat_interleave(torch.arange(num_dst), deg)
    agg = torch.zeros(num_dst, h.shape[1], dtype=h.dtype)
    agg.index_add_(0, dst, h[indices])
    return agg / deg.clamp(min=1).unsqueeze(1).to(h.dtype)


class SAGEConv(torch.nn.Module):
    """GraphSAGE with the mean aggregator over one block (the destination
    nodes are the first num_dst source nodes):

        h_dst' = W_self h_dst + W_neigh mean_{src -> dst} h_src + b

    With sparse_input, x is multiplied by [W_self; W_neigh] first and the
    mean taken of the products (the same function: the mean is linear).
    Cora's features are sparse bag-of-words rows, and Debian's PyTorch
    has no optimised BLAS: a sparse product is ~15x faster here."""

    def __init__(self, d_in, d_out, sparse_input=False):
        super().__init__()
        self.self_lin = torch.nn.Linear(d_in, d_out)
        self.neigh_lin = torch.nn.Linear(d_in, d_out, bias=False)
        self.sparse_input = sparse_input

    def forward(self, h, indptr, indices):
        num_dst = indptr.shape[0] - 1
        if not self.sparse_input:
            agg = mean_aggregate(h, indptr, indices)
            return self.self_lin(h[:num_dst]) + self.neigh_lin(agg)
        d_out = self.self_lin.out_features
        w = torch.cat([self.self_lin.weight, self.neigh_lin.weight])
        z = torch.sparse.mm(h, w.t())  # h: a sparse COO tensor
        return (z[:num_dst, :d_out] + self.self_lin.bias +
                mean_aggregate(z[:, d_out:], indptr, indices))


class GraphSAGE(torch.nn.Module):
    def __init__(self, d_in, hidden, classes, dropout):
        super().__init__()
        self.conv1 = SAGEConv(d_in, hidden, sparse_input=True)
        self.norm = ft.LayerNorm(hidden)  # ferry's fused LayerNorm
        self.conv2 = SAGEConv(hidden, classes)
        self.dropout = dropout

    def forward(self, x, blocks):
        xs = x.to_sparse()
        if self.training and self.dropout:  # dropout of the nonzeros
            xs = torch.sparse_coo_tensor(
                xs.indices(), F.dropout(xs.values(), self.dropout),
                xs.shape)
        h = self.conv1(xs, *blocks[0])
        h = F.relu(self.norm(h))
        h = F.dropout(h, self.dropout, self.training)
        return self.conv2(h, *blocks[1])


def batch_tensors(batch):
    """The batch's features and blocks as torch tensors viewing ferry's
    memory in place (valid until the batch is released)."""
    x = torch.from_numpy(batch.features.numpy())
    blocks = [(torch.from_numpy(b.indptr.numpy()),
               torch.from_numpy(b.indices.numpy())) for b in batch.blocks]
    return x, blocks


def split(n, seed):
    perm = np.random.default_rng(seed).permutation(n)
    a, b = int(0.6 * n), int(0.8 * n)
    return perm[:a], perm[a:b], perm[b:]


@torch.no_grad()
def evaluate(model, loader, labels):
    model.eval()
    correct = total = 0
    for batch in loader.epoch(0):
        x, blocks = batch_tensors(batch)
        pred = model(x, blocks).argmax(1)
        y = labels[torch.from_numpy(batch.seeds)]
        correct += int((pred == y).sum())
        total += y.shape[0]
    return correct / max(total, 1)


def train(args, data, hard_delta=None, log=print):
    """One training run; returns its figures."""
    cora, table = data["cora"], data["table"]
    torch.manual_seed(args.seed)
    labels = torch.from_numpy(cora.labels.astype(np.int64))
    train_ids, val_ids, test_ids = split(cora.num_nodes, args.seed)
    sampler = ferry.Sampler(cora.graph, args.fanouts, seed=args.seed)
    full = ferry.Sampler(cora.graph, [-1, -1])
    val_loader = ferry.Loader(cora.graph, table, full, val_ids, 1024,
                              order="fixed")
    test_loader = ferry.Loader(cora.graph, table, full, test_ids, 1024,
                               order="fixed")
    num_batches = math.ceil(len(train_ids) / args.batch_size)
    selector = None
    if hard_delta is None:
        loader = ferry.Loader(cora.graph, table, sampler, train_ids,
                              args.batch_size, order="shuffle",
                              seed=args.seed)
    else:
        selector = ferry.Selector(num_batches, args.epochs, hard_delta)
        loader = ferry.Loader(cora.graph, table, sampler, train_ids,
                              args.batch_size, order="selector",
                              selector=selector)
    model = GraphSAGE(cora.num_features, args.hidden, cora.num_classes,
                      args.dropout)
    opt = ft.Adan(model.parameters(), lr=args.lr,
                  weight_decay=args.weight_decay)

    t0 = time.perf_counter()
    epochs_to_target = None
    best_val, test_at_best, history = -1.0, 0.0, []
    steps = 0
    for epoch in range(args.epochs):
        model.train()
        losses = []
        for batch in loader.epoch(epoch):
            x, blocks = batch_tensors(batch)
            y = labels[torch.from_numpy(batch.seeds)]
            loss = F.cross_entropy(model(x, blocks), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if selector is not None:
                batch.report(loss.item())  # before the batch is released
            losses.append(loss.item())
            steps += 1
        val = evaluate(model, val_loader, labels)
        if val > best_val:
            best_val = val
            test_at_best = evaluate(model, test_loader, labels)
        if epochs_to_target is None and val >= args.target_val:
            epochs_to_target = epoch + 1
        history.append(val)
        log(f"  epoch {epoch + 1:3d}  loss {np.mean(losses):.4f}  "
            f"val {val:.4f}  steps {steps}")
    elapsed = time.perf_counter() - t0
    test = evaluate(model, test_loader, labels)
    for o in (loader, val_loader, test_loader, sampler, full):
        o.close()
    if selector is not None:
        selector.close()
    return {
        "mode": "baseline" if hard_delta is None else f"hard {hard_delta}",
        "epochs": args.epochs, "steps": steps, "test_acc": test,
        "best_val_acc": best_val, "test_acc_at_best_val": test_at_best,
        "target_val": args.target_val, "epochs_to_target": epochs_to_target,
        "seconds": elapsed, "val_history": history,
    }


def load(args):
    # cpu (default): the loader's batches are host memory the model reads in
    # place; another backend's batches are copied to the host (torch here is
    # CPU-only). LayerNorm and Adan run on ferry.torch's cpu context.
    ctx = ft.context() if args.backend == "cpu" else \
        ferry.Context(args.backend)
    cora = ferry.Linqs(ctx, args.data)
    table = cora.feature_table()
    return {"ctx": ctx, "cora": cora, "table": table}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=os.environ.get("FERRY_CORA",
                                                    DEFAULT_DATA),
                   help="LINQS prefix (.../cora/cora)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--fanouts", type=lambda s: [int(v) for v in s.split(",")],
                   default=[10, 10])
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=0.02)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target-val", type=float, default=0.89,
                   help="report the epochs each run took to reach this "
                   "validation accuracy")
    p.add_argument("--hard-batches", type=float, default=None, metavar="δ",
                   help="also train with the hard-batch selector, k=int(δB)")
    p.add_argument("--backend", default="cpu",
                   help="ferry backend of the loader (sampling, gathering)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (0: torch's default)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    log = (lambda *a: None) if args.quiet else print
    data = load(args)
    cora = data["cora"]
    print(f"Cora: {cora.num_nodes} nodes, {cora.graph.num_edges} edges, "
          f"{cora.num_features} features, {cora.num_classes} classes; "
          f"ferry {data['ctx'].backend}, torch {torch.__version__}")
    runs = [None] if args.hard_batches is None else [None, args.hard_batches]
    results = []
    for delta in runs:
        print("baseline (shuffled batches)" if delta is None
              else f"hard batches, delta {delta}")
        r = train(args, data, delta, log)
        results.append(r)
    for r in results:
        print(f"{r['mode']:>10}: test acc {r['test_acc']:.4f} (at best val "
              f"{r['best_val_acc']:.4f}: {r['test_acc_at_best_val']:.4f}), "
              f"epochs to val >= {r['target_val']}: {r['epochs_to_target']}, "
              f"{r['steps']} steps, {r['seconds']:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
