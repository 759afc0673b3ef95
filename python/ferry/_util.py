"""Small helpers shared by the op modules."""

import ctypes

import numpy as np

from .core import Tensor, as_tensor


def host_array(x, dtype):
    """A C-contiguous NumPy array of `dtype` (copied only when needed)."""
    return np.ascontiguousarray(np.asarray(x), dtype=dtype)


def ptr(a):
    return ctypes.c_void_p(a.ctypes.data) if a.size else \
        ctypes.c_void_p(_EMPTY.ctypes.data)


_EMPTY = np.zeros(8, np.uint8)


def opt_tensor(context, x, write=False):
    """as_tensor, None passing through; returns (Tensor or None, pointer)."""
    if x is None:
        return None, None
    t = as_tensor(context, x, write=write)
    return t, ctypes.byref(t.struct)


def new_output(context, shape, dtype):
    """An output the context's ops can write: a NumPy array on the cpu
    backend (host memory, returned as is), a device tensor elsewhere."""
    if context.backend == "cpu":
        from .core import numpy_dtype
        return np.empty(shape, numpy_dtype(dtype))
    return Tensor.empty(context, shape, dtype, "device")
