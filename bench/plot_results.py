#!/usr/bin/env python3
"""Plot ferry-bench results: backends side by side, per op and method, as the
ratio of each measurement to the limit measured in the same run.

    plot_results.py RESULTS.json OUT.{png,svg} [--title TEXT]

One bar per (op/method, backend): the median ratio over that method's judged
records (buffers at least 4x the last-level cache); the whiskers span the
lowest and highest ratio. Records without a limit are left out. Needs
matplotlib (Debian: python3-matplotlib).
"""
import argparse
import json
import statistics
import sys


def collect(results):
    """{(op, method): {backend: [ratio, ...]}} of judged records."""
    groups = {}
    for r in results:
        ratio = r.get("ratio")
        if ratio is None or not r.get("judged", False):
            continue
        key = (r["op"], r["method"])
        groups.setdefault(key, {}).setdefault(r["backend"], []).append(ratio)
    return groups


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("out")
    ap.add_argument("--title", default=None)
    args = ap.parse_args()

    with open(args.results) as f:
        doc = json.load(f)
    groups = collect(doc.get("results", []))
    if not groups:
        print("plot_results: no judged records with a limit in", args.results,
              file=sys.stderr)
        return 1

    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    keys = sorted(groups)
    backends = sorted({b for g in groups.values() for b in g})
    width = 0.8 / len(backends)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(keys) + 2), 4.5))
    for i, be in enumerate(backends):
        xs, meds, lo, hi = [], [], [], []
        for k, key in enumerate(keys):
            ratios = groups[key].get(be)
            if not ratios:
                continue
            m = statistics.median(ratios)
            xs.append(k + (i - (len(backends) - 1) / 2) * width)
            meds.append(m)
            lo.append(m - min(ratios))
            hi.append(max(ratios) - m)
        ax.bar(xs, meds, width, yerr=[lo, hi], capsize=2, label=be)
    ax.axhline(1.0, color="black", linewidth=0.6, linestyle="--")
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([f"{op}\n{method}" for op, method in keys],
                       rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("ratio to the limit measured in the same run")
    machine = doc.get("machine", {})
    title = args.title or "ferry-bench on {} ({}, {})".format(
        machine.get("hostname", "?"), machine.get("cpu_model", "?"),
        machine.get("git_commit", "?"))
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out)
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
