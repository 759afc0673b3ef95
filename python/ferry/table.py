"""Feature tables and zero-copy gather (include/ferry/table.h)."""

import ctypes
import os

import numpy as np

from . import _lib
from .core import _Handle, Tensor, as_tensor, dtype_code, dtype_name, \
    numpy_dtype
from .errors import call
from ._util import new_output

PLACEMENTS = {"auto": 0, "zerocopy": 1, "device": 2, "staged": 3}
_PLACEMENT_NAMES = {v: k for k, v in PLACEMENTS.items()}
_PATHS = {1: "host", 2: "zerocopy", 3: "device", 4: "staged"}
METHODS = {"default": 0, "aligned": 1, "naive": 2}


def _placement(p):
    if isinstance(p, int):
        return p
    try:
        return PLACEMENTS[p]
    except KeyError:
        raise ValueError(f"placement {p!r}: one of {', '.join(PLACEMENTS)}") \
            from None


def _table_options(placement, u2_is_bf16=False, progress=None):
    o = _lib.TableOptions(placement=_placement(placement),
                          npy_u2_is_bf16=int(bool(u2_is_bf16)))
    cb = None
    if progress is not None:
        cb = _lib.TABLE_PROGRESS_FN(lambda d, t, _u: progress(d, t))
        o.progress = cb
    return o, cb


def gather_options(method="default", max_blocks=0):
    return _lib.GatherOptions(method=METHODS[method] if isinstance(method, str)
                              else int(method), max_blocks=int(max_blocks))


class Table(_Handle):
    """A rows x cols feature table (f32, f16 or bf16).

    Table(ctx, rows, cols, dtype, placement) allocates one (NUMA-bound; fill
    it with write()); Table.wrap() views a NumPy array in place;
    Table.from_npy() loads a .npy file."""

    _destroy = "ferry_table_destroy"

    def __init__(self, context, rows, cols, dtype="f32", placement="auto",
                 _handle=None, _keep=None):
        if _handle is None:
            o, _cb = _table_options(placement)
            h = ctypes.c_void_p()
            call("ferry_table_create", context.handle, int(rows), int(cols),
                 dtype_code(dtype), ctypes.byref(o), ctypes.byref(h))
            _handle = h.value
        self._keep = _keep
        super().__init__(_handle, context)

    @classmethod
    def wrap(cls, context, array, placement="auto", dtype=None):
        """The 2-D C-contiguous array's memory as a table, in place (the
        table keeps the array alive). dtype "bf16" reads uint16 as bf16."""
        a = np.asarray(array)
        if a.ndim != 2 or not a.flags.c_contiguous:
            raise ValueError("Table.wrap: a 2-D C-contiguous array is needed")
        code = dtype_code(dtype if dtype is not None else a.dtype)
        o, _cb = _table_options(placement)
        h = ctypes.c_void_p()
        call("ferry_table_wrap_host", context.handle,
             ctypes.c_void_p(a.ctypes.data), a.shape[0], a.shape[1], code,
             ctypes.byref(o), ctypes.byref(h))
        return cls(context, 0, 0, _handle=h.value, _keep=a)

    @classmethod
    def from_npy(cls, context, path, placement="auto", u2_is_bf16=False,
                 progress=None):
        """Load a 2-D .npy file ('<f4', '<f2', or '<u2' as bf16 with
        u2_is_bf16). progress(done_bytes, total_bytes) may be given."""
        o, _cb = _table_options(placement, u2_is_bf16, progress)
        h = ctypes.c_void_p()
        call("ferry_table_from_npy", context.handle,
             os.fsencode(path), ctypes.byref(o), ctypes.byref(h))
        return cls(context, 0, 0, _handle=h.value)

    @property
    def info(self):
        i = _lib.TableInfo()
        call("ferry_table_get_info", self.handle, ctypes.byref(i))
        return {
            "rows": i.rows, "cols": i.cols, "dtype": dtype_name(i.dtype),
            "row_bytes": i.row_bytes,
            "placement": _PLACEMENT_NAMES.get(i.placement, i.placement),
            "path": _PATHS.get(i.path, i.path), "wrapped": bool(i.wrapped),
            "file_mapped": bool(i.file_mapped),
            "numa_bound": bool(i.numa_bound),
            "numa_nodes": _lib.cstr(i.numa_nodes), "pieces": i.pieces,
            "host_threads": i.host_threads,
        }

    def _static(self):
        """(rows, cols, dtype): fixed for the table's life, cached."""
        st = self.__dict__.get("_static_info")
        if st is None:
            i = self.info
            st = self._static_info = (i["rows"], i["cols"], i["dtype"])
        return st

    @property
    def shape(self):
        return self._static()[:2]

    @property
    def dtype(self):
        return self._static()[2]

    def write(self, first_row, array):
        i = self.info
        a = np.ascontiguousarray(array, dtype=numpy_dtype(i["dtype"]))
        if a.ndim != 2 or a.shape[1] != i["cols"]:
            raise ValueError(f"Table.write: rows of {i['cols']} columns are "
                             f"needed, got shape {a.shape}")
        call("ferry_table_write", self.handle, int(first_row), a.shape[0],
             ctypes.c_void_p(a.ctypes.data))

    def read(self, first_row=0, num_rows=None):
        i = self.info
        if num_rows is None:
            num_rows = i["rows"] - int(first_row)
        out = np.empty((int(num_rows), i["cols"]), numpy_dtype(i["dtype"]))
        call("ferry_table_read", self.handle, int(first_row), int(num_rows),
             ctypes.c_void_p(out.ctypes.data))
        return out

    def gather(self, ids, out=None, n=None, stream=None, dtype=None,
               method="default", max_blocks=0):
        return gather(self, ids, out=out, n=n, stream=stream, dtype=dtype,
                      method=method, max_blocks=max_blocks)


def gather(table, ids, out=None, n=None, stream=None, dtype=None,
           method="default", max_blocks=0):
    """out[i] = table[ids[i]] for i < n (default len(ids)).

    ids: int32/int64 (NumPy, ferry Tensor, torch). out: given, or made
    (NumPy on the cpu backend, a device tensor elsewhere) of `dtype` (the
    table's, or "f32"). Without `stream` the call waits and returns the
    result; with one it is queued and the stream keeps the inputs alive
    until its next synchronize(). A bad id raises OutOfRangeError (at the
    wait)."""
    ctx = table.context
    if isinstance(ids, (np.ndarray, list, tuple)):
        # ferry takes contiguous int32/int64 ids: make them so (a copy only
        # when needed).
        ids = np.asarray(ids)
        if ids.dtype not in (np.int32, np.int64):
            ids = ids.astype(np.int64)
        ids = np.ascontiguousarray(ids)
    ids_t = as_tensor(ctx, ids)
    if n is None:
        n = ids_t.shape[0] if ids_t.ndim else 0
    _, cols, tdtype = table._static()
    if out is None:
        out = new_output(ctx, (int(n), cols), dtype or tdtype)
    out_t = as_tensor(ctx, out, write=True)
    opts = gather_options(method, max_blocks)
    s = stream or ctx.stream
    s.keep(ids, ids_t, out, out_t, table)
    call("ferry_gather", table.handle, ctypes.byref(ids_t.struct), int(n),
         ctypes.byref(out_t.struct), s.handle, ctypes.byref(opts))
    if stream is None:
        s.synchronize()
    elif isinstance(out, Tensor):
        out.stream = stream
    return out
