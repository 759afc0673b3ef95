#!/usr/bin/env python3
"""ferry-info --json, read back with the json module.

  test_topology_ferry_info.py topologies FERRY_INFO DIR
      every real topology: each GPU's NUMA nodes as data/topologies/README.md
      lists them, and the topology-only decision; missing and corrupt files
      fail with a message naming the file.
  test_topology_ferry_info.py machine FERRY_INFO
      this machine (no GPU): cpu and opencl available, cuda and hip
      unavailable with reasons, cpu chosen. Exits 77 (skip) when the opencl
      plugin was not built.
"""
import json
import os
import subprocess
import sys
import tempfile

# Hard-coded from data/topologies/README.md: (bus id, NUMA OS index).
EXPECTED = {
    "nvidia-dgx2-16xV100.xml": ("nvidia", "cuda", [
        ("0000:34:00.0", 0), ("0000:36:00.0", 0), ("0000:39:00.0", 0),
        ("0000:3b:00.0", 0), ("0000:57:00.0", 0), ("0000:59:00.0", 0),
        ("0000:5c:00.0", 0), ("0000:5e:00.0", 0), ("0000:b7:00.0", 1),
        ("0000:b9:00.0", 1), ("0000:bc:00.0", 1), ("0000:be:00.0", 1),
        ("0000:e0:00.0", 1), ("0000:e2:00.0", 1), ("0000:e5:00.0", 1),
        ("0000:e7:00.0", 1)]),
    "juwels-booster-4xA100-nps4.xml": ("nvidia", "cuda", [
        ("0000:03:00.0", 3), ("0000:44:00.0", 1), ("0000:84:00.0", 7),
        ("0000:c4:00.0", 5)]),
    "llnl-lassen-power9-4xV100.xml": ("nvidia", "cuda", [
        ("0004:04:00.0", 0), ("0004:05:00.0", 0), ("0035:03:00.0", 8),
        ("0035:04:00.0", 8)]),
    "llnl-tioga-8xMI250X-gcd-nps4.xml": ("amd", "hip", [
        ("0000:c1:00.0", 3), ("0000:c6:00.0", 3), ("0000:c9:00.0", 1),
        ("0000:ce:00.0", 1), ("0000:d1:00.0", 0), ("0000:d6:00.0", 0),
        ("0000:d9:00.0", 2), ("0000:de:00.0", 2)]),
    "llnl-corona-4xVega20-nps4.xml": ("amd", "hip", [
        ("0000:13:00.0", 1), ("0000:23:00.0", 2), ("0000:53:00.0", 5),
        ("0000:73:00.0", 7)]),
    "llnl-corona-8xVega20-rsmi-opencl.xml": ("amd", "hip", [
        ("0000:03:00.0", 0), ("0000:27:00.0", 0), ("0000:43:00.0", 0),
        ("0000:63:00.0", 0), ("0000:83:00.0", 1), ("0000:a3:00.0", 1),
        ("0000:c3:00.0", 1), ("0000:e3:00.0", 1)]),
}

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(tool, *args):
    p = subprocess.run([tool, *args], capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def run_json(tool, *args):
    rc, out, err = run(tool, "--json", *args)
    if rc != 0:
        raise SystemExit(f"ferry-info {' '.join(args)} failed ({rc}): {err}")
    try:
        return json.loads(out)
    except json.JSONDecodeError as e:
        raise SystemExit(f"ferry-info {' '.join(args)}: not JSON: {e}\n{out}")


def topologies(tool, directory):
    present = sorted(f for f in os.listdir(directory) if f.endswith(".xml"))
    check(present == sorted(EXPECTED),
          f"the topologies here {present} are the README's {sorted(EXPECTED)}")
    for name, (vendor, backend, gpus) in EXPECTED.items():
        path = os.path.join(directory, name)
        doc = run_json(tool, "--topology", path)
        check(doc["decided_from"] == "topology", f"{name}: decided_from")
        got = [(g["pci_bus_id"], g["vendor"], g["numa_nodes"])
               for g in doc["gpus"]]
        want = [(bus, vendor, [numa]) for bus, numa in gpus]
        check(got == want, f"{name}: gpus {got} != {want}")
        sel = doc["selected"]
        check(sel["backend"] == backend, f"{name}: chose {sel['backend']}")
        lowest = min(gpus, key=lambda g: g[0])
        check(sel["pci_bus_id"] == lowest[0],
              f"{name}: chose bus {sel['pci_bus_id']}, lowest is {lowest[0]}")
        check(sel["device"] == 0, f"{name}: device {sel['device']}")
        check(sel["numa_nodes"] == [lowest[1]],
              f"{name}: selected numa_nodes {sel['numa_nodes']}")
        names = {b["name"]: b for b in doc["backends"]}
        check(names[backend]["available"] is True, f"{name}: {backend}")
        check(all(isinstance(b["reason"], str) for b in doc["backends"]),
              f"{name}: reasons are strings")
        reasons = [r["reason"] for r in doc["rejected"]]
        check(any(r.startswith("cpu: a GPU backend was preferred")
                  for r in reasons), f"{name}: cpu rejection in {reasons}")
        # this machine's report rides along
        check("machine" in doc and doc["machine"]["decided_from"] == "machine",
              f"{name}: no machine report beside the topology's")

    with tempfile.TemporaryDirectory() as tmp:
        missing = os.path.join(tmp, "missing.xml")
        rc, out, err = run(tool, "--json", "--topology", missing)
        check(rc != 0, "a missing file exits non-zero")
        check(missing in err, f"the message names the file: {err!r}")
        check(out == "", "no JSON on failure")
        corrupt = os.path.join(tmp, "corrupt.xml")
        with open(os.path.join(directory, "nvidia-dgx2-16xV100.xml")) as f:
            head = f.read(2000)
        with open(corrupt, "w") as f:
            f.write(head)
        rc, out, err = run(tool, "--topology", corrupt)
        check(rc != 0, "a corrupt file exits non-zero")
        check(corrupt in err and "hwloc" in err, f"corrupt: {err!r}")
    rc, _, err = run(tool, "--no-such-option")
    check(rc == 2 and "usage" in err, "a bad option gives usage and 2")


def machine(tool):
    env_backend = os.environ.pop("FERRY_BACKEND", None)
    doc = run_json(tool)
    names = {b["name"]: b for b in doc["backends"]}
    for name in ("cpu", "cuda", "hip", "opencl"):
        check(name in names, f"backend {name} listed")
    opencl = names.get("opencl")
    if opencl is not None and not opencl["found"]:
        print("SKIP: the opencl plugin was not built here:", opencl["reason"])
        return 77
    check(names["cpu"]["available"] is True, "cpu available")
    check(opencl["available"] is True,
          f"opencl available (PoCL): {opencl['reason']}")
    check(len(opencl["devices"]) >= 1, "opencl lists its devices")
    for name in ("cuda", "hip"):
        check(names[name]["available"] is False, f"{name} unavailable here")
        check(len(names[name]["reason"]) > 10,
              f"{name} says why: {names[name]['reason']!r}")
    check(doc["gpus"] == [], "no GPU on this machine")
    sel = doc["selected"]
    check(sel["backend"] == "cpu", f"auto chose {sel['backend']} here")
    topo = doc["topology"]
    check(topo["this_system"] is True, "this machine's topology")
    check(len(sel["numa_nodes"]) == topo["numa_node_count"],
          "cpu spans every NUMA node")
    reasons = [r["reason"] for r in doc["rejected"]]
    check(any(r.startswith("opencl") for r in reasons),
          f"opencl's rejection is explained: {reasons}")
    if env_backend is not None:
        os.environ["FERRY_BACKEND"] = env_backend
    return 0


def main():
    mode, tool = sys.argv[1], sys.argv[2]
    rc = 0
    if mode == "topologies":
        topologies(tool, sys.argv[3])
    elif mode == "machine":
        rc = machine(tool)
    else:
        raise SystemExit(f"unknown mode {mode}")
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
