"""The minibatch loader (include/ferry/loader.h)."""

import ctypes

import numpy as np

from . import _lib
from .core import _Handle, Tensor, dtype_code, dtype_name
from .errors import call
from .graph import Minibatch
from .table import gather_options
from ._util import host_array, ptr

ORDERS = {"shuffle": 0, "fixed": 1, "selector": 2}
_ORDER_NAMES = {v: k for k, v in ORDERS.items()}


class Loader(_Handle):
    """Batches of sampled blocks with their input features, prepared on a
    thread of the loader's own while the caller trains.

        loader = ferry.Loader(graph, table, sampler, seeds, batch_size=512)
        for batch in loader.epoch(e):        # released after each body
            x = batch.features.numpy()       # valid until released
            ...

    order: "shuffle" (seeded by seed and the epoch), "fixed", or "selector"
    (give selector=ferry.Selector(loader_batches, epochs, delta) and report
    each batch's loss with batch.report(loss) before it is released)."""

    _destroy = "ferry_loader_destroy"

    def __init__(self, graph, table, sampler, seeds, batch_size,
                 order="shuffle", seed=0, selector=None, depth=0,
                 drop_last=False, feature_dtype=None, gather_method="default",
                 max_blocks=0):
        s = host_array(seeds, np.int64)
        self._gopts = gather_options(gather_method, max_blocks)
        o = _lib.LoaderOptions(
            batch_size=int(batch_size),
            order=ORDERS[order] if isinstance(order, str) else int(order),
            seed=int(seed), selector=selector.handle if selector else None,
            depth=int(depth), drop_last=int(bool(drop_last)),
            feature_dtype=dtype_code(feature_dtype) if feature_dtype else 0,
            gather=ctypes.pointer(self._gopts))
        h = ctypes.c_void_p()
        call("ferry_loader_create", graph.handle, table.handle,
             sampler.handle, ptr(s), s.shape[0], ctypes.byref(o),
             ctypes.byref(h))
        # The three (and the selector) must outlive the loader.
        self.graph, self.table, self.sampler = graph, table, sampler
        self.selector = selector
        self._held = set()
        super().__init__(h.value, graph.context)

    def close(self):
        for b in list(self._held):
            b._invalidate()
        self._held.clear()
        super().close()

    @property
    def info(self):
        i = _lib.LoaderInfo()
        call("ferry_loader_get_info", self.handle, ctypes.byref(i))
        return {"num_seeds": i.num_seeds, "batch_size": i.batch_size,
                "num_batches": i.num_batches, "depth": i.depth,
                "order": _ORDER_NAMES.get(i.order, i.order),
                "feature_dtype": dtype_name(i.feature_dtype),
                "feature_cols": i.feature_cols}

    @property
    def num_batches(self):
        return self.info["num_batches"]

    def start_epoch(self, epoch):
        call("ferry_loader_start_epoch", self.handle, int(epoch))

    def next(self, compute=None):
        """The next batch, or None at the end of the epoch. Work queued on
        `compute` (a ferry Stream) afterwards waits for the batch."""
        b = ctypes.c_void_p()
        done = ctypes.c_int()
        call("ferry_loader_next", self.handle,
             compute.handle if compute else None, ctypes.byref(b),
             ctypes.byref(done))
        if done.value:
            return None
        batch = Batch(self, b.value)
        self._held.add(batch)
        return batch

    def release(self, batch, compute=None):
        if batch._h is None:
            return
        h = batch._h
        batch._invalidate()
        self._held.discard(batch)
        call("ferry_loader_release", self.handle, h,
             compute.handle if compute else None)

    def epoch(self, epoch, compute=None):
        """Start `epoch` and yield its batches, releasing each one when the
        loop asks for the next (or leaves)."""
        self.start_epoch(epoch)
        while True:
            b = self.next(compute)
            if b is None:
                return
            try:
                yield b
            finally:
                self.release(b, compute)


class Batch:
    """A loader batch: id, step, epoch, sample_id, seeds (NumPy copy),
    minibatch (its blocks), features (a ferry Tensor of [num_input_nodes,
    cols]). Everything is valid until the batch is released."""

    def __init__(self, loader, handle):
        self._loader = loader
        self._h = handle
        i = _lib.BatchInfo()
        call("ferry_batch_get_info", handle, ctypes.byref(i))
        self.id = i.id
        self.step = i.step
        self.epoch = i.epoch
        self.sample_id = i.sample_id
        self.num_seeds = i.num_seeds
        self.seeds = np.ctypeslib.as_array(i.seeds, (i.num_seeds,)).copy() \
            if i.num_seeds else np.zeros(0, np.int64)
        self.num_input_nodes = i.num_input_nodes
        ctx = loader.context
        self.minibatch = Minibatch(ctx, i.minibatch, borrowed=True)
        self.features = Tensor(ctx, i.features, keep=self)

    @property
    def blocks(self):
        return self.minibatch.blocks

    def report(self, loss):
        """Report this batch's loss to the loader's selector."""
        if self._loader.selector is None:
            raise ValueError("the loader has no selector")
        self._loader.selector.report(self.id, loss)

    def release(self, compute=None):
        self._loader.release(self, compute)

    def _invalidate(self):
        self._h = None
        self.minibatch._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
