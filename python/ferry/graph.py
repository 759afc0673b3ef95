"""Graphs, LINQS datasets, neighbor sampling and the hard-batch selector
(include/ferry/graph.h)."""

import ctypes
import os

import numpy as np

from . import _lib
from .core import _Handle, Tensor, dtype_code, dtype_name, space_code
from .errors import call
from ._util import host_array, ptr


def _graph_options(placement="pinned", id_dtype="i32", symmetrize=False,
                   remove_self_loops=False, remove_duplicates=False,
                   wrap=False):
    return _lib.GraphOptions(
        placement=space_code(placement), id_dtype=dtype_code(id_dtype),
        symmetrize=int(bool(symmetrize)),
        remove_self_loops=int(bool(remove_self_loops)),
        remove_duplicates=int(bool(remove_duplicates)), wrap=int(bool(wrap)))


class Graph(_Handle):
    """A CSR graph (int64 row offsets, int32 or int64 column ids). Build one
    with from_csr, from_edges, load_edge_list or rmat."""

    _destroy = "ferry_graph_destroy"

    def __init__(self, context, handle, keep=None, owned=True):
        self._keep = keep
        # A graph another object frees (a LINQS dataset's) is not destroyed.
        super().__init__(handle, context, destroy=owned)

    @classmethod
    def from_csr(cls, context, offsets, cols, placement="pinned", wrap=False):
        """offsets: num_nodes + 1 int64; cols: int32 or int64 ids. wrap=True
        uses the arrays in place (the graph keeps them alive)."""
        off = host_array(offsets, np.int64)
        c = np.asarray(cols)
        if c.dtype not in (np.int32, np.int64):
            c = c.astype(np.int64)
        c = np.ascontiguousarray(c)
        o = _graph_options(placement, wrap=wrap)
        h = ctypes.c_void_p()
        call("ferry_graph_create_csr", context.handle, ctypes.byref(o),
             off.shape[0] - 1, ptr(off), ptr(c), dtype_code(c.dtype),
             ctypes.byref(h))
        return cls(context, h.value, keep=(off, c) if wrap else None)

    @classmethod
    def from_edges(cls, context, num_nodes, src, dst, **opts):
        """Directed edges src[i] -> dst[i]; opts: placement, id_dtype,
        symmetrize, remove_self_loops, remove_duplicates."""
        s = host_array(src, np.int64)
        d = host_array(dst, np.int64)
        if s.shape != d.shape:
            raise ValueError(f"src and dst differ in length ({s.shape[0]} "
                             f"and {d.shape[0]})")
        o = _graph_options(**opts)
        h = ctypes.c_void_p()
        call("ferry_graph_create_from_edges", context.handle, ctypes.byref(o),
             int(num_nodes), ptr(s), ptr(d), s.shape[0], ctypes.byref(h))
        return cls(context, h.value)

    @classmethod
    def load_edge_list(cls, context, path, num_nodes=0, **opts):
        """A .npy (E, 2) or text edge list file."""
        o = _graph_options(**opts)
        h = ctypes.c_void_p()
        call("ferry_graph_load_edge_list", context.handle, ctypes.byref(o),
             os.fsencode(path), int(num_nodes), ctypes.byref(h))
        return cls(context, h.value)

    @classmethod
    def rmat(cls, context, scale=16, edge_factor=16, a=0.57, b=0.19, c=0.19,
             seed=1, **opts):
        """Graph500's R-MAT generator (2^scale nodes)."""
        r = _lib.RmatOptions(scale=int(scale), edge_factor=int(edge_factor),
                             a=a, b=b, c=c, seed=int(seed))
        o = _graph_options(**opts)
        h = ctypes.c_void_p()
        call("ferry_graph_create_rmat", context.handle, ctypes.byref(o),
             ctypes.byref(r), ctypes.byref(h))
        return cls(context, h.value)

    def _info(self):
        i = _lib.GraphInfo()
        call("ferry_graph_get_info", self.handle, ctypes.byref(i))
        return i

    @property
    def info(self):
        i = self._info()
        return {"num_nodes": i.num_nodes, "num_edges": i.num_edges,
                "max_degree": i.max_degree,
                "id_dtype": dtype_name(i.id_dtype), "placement": i.placement}

    @property
    def num_nodes(self):
        return self._info().num_nodes

    @property
    def num_edges(self):
        return self._info().num_edges

    def csr(self):
        """(offsets, cols) as ferry Tensors viewing the graph's CSR (valid
        while the graph lives; they keep it alive)."""
        i = self._info()
        return (Tensor(self.context, i.offsets, keep=self),
                Tensor(self.context, i.cols, keep=self))


class Linqs(_Handle):
    """A LINQS dataset (Cora, CiteSeer): Linqs(ctx, ".../cora/cora").

    graph: the symmetrised graph; features (N x F float32) and labels (N
    int32) are NumPy copies; class_names; the load's counts in stats."""

    _destroy = "ferry_linqs_destroy"

    def __init__(self, context, prefix, placement="pinned", id_dtype="i32"):
        o = _graph_options(placement, id_dtype)
        p = ctypes.POINTER(_lib.Linqs)()
        call("ferry_linqs_load", context.handle, ctypes.byref(o),
             os.fsencode(prefix), ctypes.byref(p))
        self._p = p
        super().__init__(ctypes.cast(p, ctypes.c_void_p).value, context)
        d = p.contents
        self.num_nodes = d.num_nodes
        self.num_features = d.num_features
        self.num_classes = d.num_classes
        n, f = d.num_nodes, d.num_features
        self.features = np.ctypeslib.as_array(d.features, (n, f)).copy() \
            if n * f else np.zeros((n, f), np.float32)
        self.labels = np.ctypeslib.as_array(d.labels, (n,)).copy() \
            if n else np.zeros(0, np.int32)
        self.class_names = [_lib.cstr(d.class_names[i])
                            for i in range(d.num_classes)]
        self.stats = {k: getattr(d, k) for k in (
            "citation_lines", "unknown_dropped", "self_loops",
            "undirected_edges", "isolated_nodes")}
        self.graph = Graph(context, d.graph, keep=self, owned=False)

    def close(self):
        if self._h:
            self.graph._h = None
        super().close()

    def feature_table(self, placement="auto"):
        from .table import Table, _table_options
        o, _cb = _table_options(placement)
        h = ctypes.c_void_p()
        call("ferry_linqs_feature_table", self.context.handle, self._p,
             ctypes.byref(o), ctypes.byref(h))
        return Table(self.context, 0, 0, _handle=h.value)


class Sampler(_Handle):
    """Neighbor sampler: fanouts in DGL's order (fanouts[i] is block i's;
    the last applies to the seeds; -1 takes every neighbor)."""

    _destroy = "ferry_sampler_destroy"

    def __init__(self, graph, fanouts, replace=False, seed=0):
        fanouts = list(fanouts)
        if not 1 <= len(fanouts) <= _lib.SAMPLER_MAX_LAYERS:
            raise ValueError(f"{len(fanouts)} fanouts: 1.."
                             f"{_lib.SAMPLER_MAX_LAYERS} layers")
        o = _lib.SamplerOptions(num_layers=len(fanouts),
                                replace=int(bool(replace)), seed=int(seed))
        for i, f in enumerate(fanouts):
            o.fanouts[i] = int(f)
        h = ctypes.c_void_p()
        call("ferry_sampler_create", graph.handle, ctypes.byref(o),
             ctypes.byref(h))
        self.graph = graph
        self.fanouts = fanouts
        super().__init__(h.value, graph.context)

    @property
    def info(self):
        """The options it was made with, its graph's counts and id dtype,
        and what it keeps between calls (lanes: streams with their own
        temporaries; cached_bytes: device memory kept for the next calls)."""
        i = _lib.SamplerInfo()
        call("ferry_sampler_get_info", self.handle, ctypes.byref(i))
        return {"num_layers": i.num_layers,
                "fanouts": list(i.fanouts[:i.num_layers]),
                "replace": bool(i.replace), "seed": i.seed,
                "num_nodes": i.num_nodes, "num_edges": i.num_edges,
                "id_dtype": dtype_name(i.id_dtype), "lanes": i.lanes,
                "cached_bytes": i.cached_bytes}

    def sample(self, seeds, batch_id=0):
        s = host_array(seeds, np.int64)
        h = ctypes.c_void_p()
        call("ferry_sample", self.handle, ptr(s), s.shape[0], int(batch_id),
             ctypes.byref(h))
        return Minibatch(self.context, h.value, owner=self)


class Block:
    """One block (message-flow graph): num_dst, num_src, num_edges and the
    CSC tensors indptr, indices (local ids) and src_nodes (global ids)."""

    def __init__(self, context, b, keep):
        self.num_dst = b.num_dst
        self.num_src = b.num_src
        self.num_edges = b.num_edges
        self.indptr = Tensor(context, b.indptr, keep=keep)
        self.indices = Tensor(context, b.indices, keep=keep)
        self.src_nodes = Tensor(context, b.src_nodes, keep=keep)

    def __repr__(self):
        return f"<ferry.Block dst={self.num_dst} src={self.num_src} " \
               f"edges={self.num_edges}>"


class Minibatch(_Handle):
    """The sampled blocks of one minibatch (blocks[0] is the input layer)."""

    _destroy = "ferry_minibatch_destroy"

    def __init__(self, context, handle, owner=None, borrowed=False):
        self._owner = owner
        # A loader batch's minibatch belongs to the batch: not destroyed.
        super().__init__(handle, context, destroy=not borrowed)

    @property
    def blocks(self):
        n = ctypes.c_int()
        call("ferry_minibatch_num_blocks", self.handle, ctypes.byref(n))
        out = []
        for i in range(n.value):
            b = _lib.Block_t()
            call("ferry_minibatch_block", self.handle, i, ctypes.byref(b))
            out.append(Block(self.context, b, self))
        return out

    @property
    def input_nodes(self):
        t = _lib.Tensor_t()
        call("ferry_minibatch_input_nodes", self.handle, ctypes.byref(t))
        return Tensor(self.context, t, keep=self)


class Selector(_Handle):
    """The hard-batch selector ("Can we learn better with hard samples?").

    Iterate it (or call next()) for batch ids; report(id, loss) after each."""

    _destroy = "ferry_selector_destroy"

    def __init__(self, num_batches, epochs=1, delta=1.0):
        o = _lib.SelectorOptions(num_batches=int(num_batches),
                                 epochs=int(epochs), delta=float(delta))
        h = ctypes.c_void_p()
        call("ferry_selector_create", ctypes.byref(o), ctypes.byref(h))
        super().__init__(h.value, None)

    def next(self):
        """The next batch id, or None once every step was handed out."""
        b = ctypes.c_int64()
        done = ctypes.c_int()
        call("ferry_selector_next", self.handle, ctypes.byref(b),
             ctypes.byref(done))
        return None if done.value else b.value

    def __iter__(self):
        while True:
            b = self.next()
            if b is None:
                return
            yield b

    def report(self, batch_id, loss):
        call("ferry_selector_report", self.handle, int(batch_id),
             float(loss))

    @property
    def round_size(self):
        k = ctypes.c_int64()
        call("ferry_selector_round_size", self.handle, ctypes.byref(k))
        return k.value

    @property
    def info(self):
        """Its options and where it stands: steps handed out, the current
        round (0: the first pass), its length, how many of its steps were
        handed out and how many of those were reported."""
        i = _lib.SelectorInfo()
        call("ferry_selector_get_info", self.handle, ctypes.byref(i))
        return {k: (bool(getattr(i, k)) if k == "done" else getattr(i, k))
                for k, _ in _lib.SelectorInfo._fields_[1:]}
