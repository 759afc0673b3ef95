"""Tables and gather, graphs, sampler, selector, loader, norm and Adan
through the binding, each against an independent NumPy reference."""


import numpy as np
import pytest

import ferry
from conftest import poison


def test_gather_against_numpy(ctx, rng):
    for rows, cols, n in [(1, 1, 1), (7, 13, 5), (97, 3, 211), (5, 8, 0)]:
        for dt in ("f32", "f16"):
            data = rng.standard_normal((rows, cols)).astype(
                ferry.core.numpy_dtype(dt))
            tab = ferry.Table.wrap(ctx, data)
            assert tab.shape == (rows, cols) and tab.dtype == dt
            assert tab.info["wrapped"]
            for id_dt in (np.int32, np.int64):
                ids = rng.integers(0, rows, n).astype(id_dt)
                out = poison(np.empty((n, cols), data.dtype))
                r = tab.gather(ids, out=out)
                assert r is out and np.array_equal(out, data[ids])
            # f16 rows converted to f32
            got = ferry.gather(tab, ids, dtype="f32")
            assert got.dtype == np.float32
            assert np.array_equal(got, data[ids].astype(np.float32))


def test_gather_async_and_bad_id(ctx, rng):
    data = rng.standard_normal((10, 4)).astype(np.float32)
    tab = ferry.Table(ctx, 10, 4)  # allocated, filled with write()
    tab.write(0, data)
    assert np.array_equal(tab.read(), data)
    s = ferry.Stream(ctx)
    out = tab.gather(np.array([9, 0, 3]), stream=s)
    s.synchronize()
    assert np.array_equal(out, data[[9, 0, 3]])
    with pytest.raises(ferry.OutOfRangeError) as e:
        tab.gather(np.array([1, 10, 2]))
    assert e.value.op == "gather" and "ids[1]" in e.value.message


def test_table_from_npy(ctx, rng, tmp_path):
    data = rng.standard_normal((6, 5)).astype(np.float32)
    p = tmp_path / "t.npy"
    np.save(p, data)
    seen = []
    tab = ferry.Table.from_npy(ctx, str(p),
                               progress=lambda d, t: seen.append((d, t)))
    assert np.array_equal(tab.read(), data)
    assert np.array_equal(tab.gather(np.array([5, 1])), data[[5, 1]])


def _edges_of(g):
    off, cols = g.csr()
    off, cols = off.numpy(), cols.numpy()
    return {(u, int(v)) for u in range(len(off) - 1)
            for v in cols[off[u]:off[u + 1]]}


def test_graphs(ctx, rng, tmp_path):
    src = np.array([0, 1, 1, 3, 4, 4])
    dst = np.array([1, 2, 2, 0, 4, 0])
    g = ferry.Graph.from_edges(ctx, 5, src, dst, symmetrize=True,
                               remove_self_loops=True, remove_duplicates=True)
    want = set()
    for u, v in zip(src, dst):
        if u != v:
            want |= {(int(u), int(v)), (int(v), int(u))}
    assert _edges_of(g) == want and g.num_edges == len(want)
    off = np.array([0, 2, 3, 3], np.int64)
    cols = np.array([1, 2, 0], np.int32)
    c = ferry.Graph.from_csr(ctx, off, cols)
    assert _edges_of(c) == {(0, 1), (0, 2), (1, 0)}
    with pytest.raises(ferry.InvalidArgumentError):
        ferry.Graph.from_csr(ctx, off, np.array([1, 7, 0], np.int32))
    p = tmp_path / "e.txt"
    p.write_text("# edges\n0 1\n1 2\n")
    assert _edges_of(ferry.Graph.load_edge_list(ctx, str(p))) == \
        {(0, 1), (1, 2)}
    r = ferry.Graph.rmat(ctx, scale=6, edge_factor=4, seed=3)
    assert r.num_nodes == 64 and r.num_edges == 256


def test_sampler_blocks_are_subgraphs(ctx, rng):
    g = ferry.Graph.rmat(ctx, scale=8, edge_factor=8, seed=1,
                         symmetrize=True, remove_duplicates=True)
    edges = _edges_of(g)
    s = ferry.Sampler(g, [4, 3], seed=7)
    seeds = rng.choice(g.num_nodes, 17, replace=False)
    mb = s.sample(seeds, batch_id=5)
    blocks = mb.blocks
    assert len(blocks) == 2
    assert np.array_equal(blocks[1].src_nodes.numpy()[:17], seeds)
    for b, fan in zip(blocks, [4, 3]):
        ip, ix = b.indptr.numpy(), b.indices.numpy()
        srcn = b.src_nodes.numpy()
        assert ip[0] == 0 and ip[-1] == b.num_edges
        assert np.all(np.diff(ip) <= fan) and np.all(ix < b.num_src)
        for d in range(b.num_dst):
            for j in ix[ip[d]:ip[d + 1]]:
                # CSC: an edge into dst d from src j, in the graph as d -> j
                # (the sampler picks a node's neighbors from its CSR row).
                assert (int(srcn[d]), int(srcn[j])) in edges
    assert np.array_equal(blocks[0].src_nodes.numpy(),
                          mb.input_nodes.numpy())
    # Same inputs, same blocks.
    again = s.sample(seeds, batch_id=5).blocks[0]
    assert np.array_equal(again.indices.numpy(), blocks[0].indices.numpy())


def test_selector_rounds():
    sel = ferry.Selector(num_batches=5, epochs=3, delta=0.4)
    assert sel.round_size == 2
    order = []
    for b in sel:
        order.append(b)
        sel.report(b, loss=float(b))  # batch 4 and 3 are the hardest
    assert len(order) == 15
    assert order[:5] == [0, 1, 2, 3, 4]
    assert order[5:7] == [3, 4]


def test_sampler_info(ctx):
    g = ferry.Graph.from_edges(ctx, 6, [0, 1, 2, 5], [1, 2, 3, 0],
                               id_dtype="i64")
    s = ferry.Sampler(g, [5, -1, 2], replace=True, seed=2**40 + 3)
    i = s.info
    assert i["fanouts"] == [5, -1, 2] and i["num_layers"] == 3
    assert i["replace"] is True and i["seed"] == 2**40 + 3
    assert (i["num_nodes"], i["num_edges"]) == (6, 4)
    assert i["id_dtype"] == "i64"
    assert i["lanes"] == 0 and i["cached_bytes"] == 0
    s.sample([0, 5], batch_id=1)
    i = s.info
    assert i["lanes"] == 1 and i["cached_bytes"] > 0


def test_selector_info():
    sel = ferry.Selector(num_batches=5, epochs=3, delta=0.4)
    i = sel.info
    assert (i["num_batches"], i["epochs"], i["delta"]) == (5, 3, 0.4)
    assert (i["round_size"], i["total_steps"], i["steps"]) == (2, 15, 0)
    assert (i["round"], i["round_length"], i["round_handed"]) == (0, 5, 0)
    assert i["done"] is False
    for b in range(5):
        assert sel.next() == b
        sel.report(b, loss=float(b))
    b = sel.next()  # round 1 begins: batches 3 and 4
    assert b == 3
    i = sel.info
    assert (i["round"], i["round_length"], i["round_handed"]) == (1, 2, 1)
    assert (i["steps"], i["round_reported"]) == (6, 0)
    sel.report(b, loss=0.5)
    assert sel.info["round_reported"] == 1
    for b in sel:
        sel.report(b, loss=1.0)
    assert sel.info["done"] is True and sel.info["steps"] == 15


def test_loader_epoch_covers_the_seeds(ctx, rng):
    g = ferry.Graph.rmat(ctx, scale=7, edge_factor=4, seed=2,
                         symmetrize=True)
    feats = rng.standard_normal((g.num_nodes, 6)).astype(np.float32)
    tab = ferry.Table.wrap(ctx, feats)
    s = ferry.Sampler(g, [3, 3], seed=1)
    seeds = rng.choice(g.num_nodes, 41, replace=False)
    ld = ferry.Loader(g, tab, s, seeds, batch_size=8, order="shuffle",
                      seed=3, depth=3)
    assert ld.num_batches == 6
    compute = ferry.Stream(ctx)
    for epoch in range(2):
        seen = []
        for b in ld.epoch(epoch, compute):
            assert b.epoch == epoch
            x = b.features.numpy()
            nodes = b.minibatch.input_nodes.numpy()
            assert x.shape == (b.num_input_nodes, 6)
            assert np.array_equal(x, feats[nodes])
            seen.extend(b.seeds.tolist())
        assert sorted(seen) == sorted(seeds.tolist())
    ld.close()


def _ln_ref(x, g, b, eps):
    x = x.astype(np.float64)
    mu = x.mean(1, keepdims=True)
    var = ((x - mu) ** 2).mean(1, keepdims=True)
    rstd = 1 / np.sqrt(var + eps)
    xh = (x - mu) * rstd
    return xh * g + b, mu[:, 0], rstd[:, 0], xh


def test_norm_against_float64(ctx, rng):
    for rows, cols in [(1, 1), (3, 7), (33, 129), (0, 5)]:
        x = rng.standard_normal((rows, cols)).astype(np.float32) * 3 + 1
        g = rng.standard_normal(cols).astype(np.float32)
        b = rng.standard_normal(cols).astype(np.float32)
        y = poison(np.empty_like(x))
        y, mean, rstd = ferry.norm_forward(x, g, b, eps=1e-5, y=y)
        ry, rmu, rrs, xh = _ln_ref(x, g, b, 1e-5)
        np.testing.assert_allclose(y, ry, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(mean, rmu, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(rstd, rrs, rtol=1e-4)
        if rows == 0:
            continue
        dy = rng.standard_normal((rows, cols)).astype(np.float32)
        dx, dg, db = ferry.norm_backward(dy, x, rstd, g, mean)
        dyg = dy.astype(np.float64) * g
        rdx = rrs[:, None] * (dyg - dyg.mean(1, keepdims=True)
                              - xh * (dyg * xh).mean(1, keepdims=True))
        np.testing.assert_allclose(dx, rdx, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(dg, (dy * xh).sum(0), rtol=1e-3,
                                   atol=1e-4)
        np.testing.assert_allclose(db, dy.astype(np.float64).sum(0),
                                   rtol=1e-4, atol=1e-4)
        # RMSNorm
        yr, none, rr = ferry.norm_forward(x, g, kind="rms")
        assert none is None
        x64 = x.astype(np.float64)
        rms = 1 / np.sqrt((x64 ** 2).mean(1) + 1e-5)
        np.testing.assert_allclose(yr, x64 * rms[:, None] * g, rtol=1e-4,
                                   atol=1e-4)
    with pytest.raises(ferry.InvalidArgumentError):
        ferry.norm_forward(np.zeros((2, 3), np.float32),
                           np.zeros(4, np.float32))


def adan_reference(p, grads, lr, b1, b2, b3, eps, wd, no_prox=False):
    """float64 Adan (sail-sg/Adan's rule as include/ferry/adan.h states
    it) over a list of gradients; returns the parameters after each."""
    p = p.astype(np.float64).copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    n = np.zeros_like(p)
    prev = None
    out = []
    for k, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        d = np.zeros_like(g) if prev is None else g - prev
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * d
        n = b3 * n + (1 - b3) * (g + b2 * d) ** 2
        denom = np.sqrt(n) / np.sqrt(1 - b3 ** k) + eps
        s1 = lr / (1 - b1 ** k)
        s2 = lr * b2 / (1 - b2 ** k)
        if no_prox:
            p = p * (1 - lr * wd) - s1 * m / denom - s2 * v / denom
        else:
            p = (p - s1 * m / denom - s2 * v / denom) / (1 + lr * wd)
        prev = g
        out.append(p.copy())
    return out


def test_adan_against_float64(ctx, rng):
    for no_prox in (False, True):
        w = rng.standard_normal(37).astype(np.float32)
        b = rng.standard_normal((3, 5)).astype(np.float32)
        grads = [(rng.standard_normal(37).astype(np.float32),
                  rng.standard_normal((3, 5)).astype(np.float32))
                 for _ in range(6)]
        opt = ferry.Adan(ctx, lr=0.05, weight_decay=0.1, no_prox=no_prox)
        gi = opt.add_group([w, b])
        assert gi == 0 and opt.state_length(0) == 52
        flat0 = np.concatenate([w.ravel(), b.ravel()])
        want = adan_reference(flat0, [np.concatenate([a.ravel(), c.ravel()])
                                      for a, c in grads],
                              0.05, 0.98, 0.92, 0.99, 1e-8, 0.1, no_prox)
        for step, (gw, gb) in enumerate(grads):
            opt.step([w, b], [gw, gb])
            got = np.concatenate([w.ravel(), b.ravel()])
            np.testing.assert_allclose(got, want[step], rtol=2e-5, atol=2e-6)
        assert opt.get_step(0) == 6
        np.testing.assert_allclose(opt.read_state(0, "grad_prev"),
                                   np.concatenate([grads[-1][0].ravel(),
                                                   grads[-1][1].ravel()]))
    with pytest.raises(ferry.InvalidArgumentError):
        opt.step([w], [gw])  # fewer tensors than were added


def test_opencl_ops_take_numpy(ocl_ctx, ctx, rng):
    """On a device backend NumPy inputs are registered in place when
    aligned, else copied; results match the cpu backend's."""
    data = rng.standard_normal((50, 8)).astype(np.float32)
    tab = ferry.Table.wrap(ocl_ctx, data)
    for ids in (np.array([3, 1, 49]), np.arange(50)[::3]):  # strided too
        out = ferry.gather(tab, ids)
        assert isinstance(out, ferry.Tensor)
        assert np.array_equal(out.numpy(), data[ids])
    # An unaligned input (offset by 4 bytes) is copied, not refused.
    raw = np.zeros(51 * 8 + 1, np.float32)
    x = raw[1:1 + 50 * 8].reshape(50, 8)
    x[...] = data
    g = rng.standard_normal(8).astype(np.float32)
    y, mean, rstd = ferry.norm_forward(x, g, context=ocl_ctx)
    yc, mc, rc = ferry.norm_forward(data, g, context=ctx)
    np.testing.assert_allclose(y.numpy(), yc, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rstd.numpy(), rc, rtol=1e-5)
    # An unaligned output cannot be written in place: refused clearly.
    with pytest.raises(ValueError):
        ferry.gather(tab, np.array([0]), out=raw[1:9].reshape(1, 8))
