"""Contexts, streams, events, buffers and tensors."""

import ctypes
import threading

import numpy as np

from . import _lib
from .errors import call, check, FerryError

lib = _lib.lib

# ferry_dtype numbers and their names / NumPy equivalents.
DTYPES = {
    "f32": 1, "f16": 2, "bf16": 3, "f64": 4, "i32": 5, "i64": 6, "u8": 7,
    "u16": 8, "u32": 9, "u64": 10, "i8": 11, "i16": 12,
}
_DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
_NP = {
    "f32": np.float32, "f16": np.float16, "f64": np.float64, "i32": np.int32,
    "i64": np.int64, "u8": np.uint8, "u16": np.uint16, "u32": np.uint32,
    "u64": np.uint64, "i8": np.int8, "i16": np.int16,
    "bf16": np.uint16,  # NumPy has no bfloat16: its bit patterns
}
_FROM_NP = {np.dtype(v): k for k, v in _NP.items() if k != "bf16"}

MEMORY_HOST = 1
MEMORY_PINNED_HOST = 2
MEMORY_DEVICE = 3
_SPACES = {"host": 1, "pinned": 2, "pinned_host": 2, "device": 3}


def dtype_code(dtype):
    """A ferry_dtype number from a name ("f32", "bf16"), a NumPy dtype, or a
    number."""
    if isinstance(dtype, int):
        if dtype not in _DTYPE_NAMES:
            raise ValueError(f"dtype {dtype} is not a ferry dtype")
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    try:
        return DTYPES[_FROM_NP[np.dtype(dtype)]]
    except (TypeError, KeyError):
        raise ValueError(f"dtype {dtype!r} has no ferry dtype "
                         f"(ferry has {', '.join(DTYPES)})") from None


def dtype_name(code):
    return _DTYPE_NAMES.get(int(code), "invalid")


def numpy_dtype(dtype):
    """The NumPy dtype holding a ferry dtype's elements (bf16: uint16)."""
    return np.dtype(_NP[dtype_name(dtype_code(dtype))])


def space_code(space):
    if isinstance(space, int):
        return space
    try:
        return _SPACES[space]
    except KeyError:
        raise ValueError(f"memory space {space!r}: one of "
                         f"{', '.join(_SPACES)}") from None


def get_api_version():
    """(major, minor, patch) of the loaded libferry."""
    v = lib.ferry_get_api_version()
    return (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF


def _device_dict(d):
    return {
        "name": _lib.cstr(d.name), "pci_bus_id": _lib.cstr(d.pci_bus_id),
        "pci_vendor_id": d.pci_vendor_id, "total_memory": d.total_memory,
        "capability": (d.capability_major, d.capability_minor),
        "base_address_align": d.base_address_align,
        "host_unified_memory": bool(d.host_unified_memory),
        "usable": bool(d.usable), "reason": _lib.cstr(d.reason),
    }


def backends():
    """What the plugin loader found: a list of dicts (name, path, available,
    device_count, reason, abi)."""
    n = ctypes.c_int()
    call("ferry_backend_count", ctypes.byref(n))
    out = []
    for i in range(n.value):
        b = _lib.BackendInfo()
        call("ferry_backend_get_info", i, ctypes.byref(b))
        out.append({
            "name": _lib.cstr(b.name), "path": _lib.cstr(b.path),
            "abi": (b.abi_major, b.abi_minor), "available": bool(b.available),
            "device_count": b.device_count, "reason": _lib.cstr(b.reason),
        })
    return out


def device_info(backend, device=0):
    d = _lib.DeviceInfo()
    call("ferry_backend_get_device_info", backend.encode(), int(device),
         ctypes.byref(d))
    return _device_dict(d)


class _Owned:
    """One ferry handle and how to destroy it, shared by the Python object
    and its context's registry. It refers to neither, so closing works the
    same whichever of the two the garbage collector finalizes first."""

    __slots__ = ("handle", "destroy", "lock", "registry", "key")

    def __init__(self, handle, destroy):
        self.handle = handle
        self.destroy = destroy
        self.lock = threading.Lock()
        self.registry = None
        self.key = None

    def close(self):
        with self.lock:
            h, self.handle = self.handle, None
        if self.registry is not None:
            self.registry.pop(self.key, None)
            self.registry = None
        if h and self.destroy:
            getattr(lib, self.destroy)(h)


class _Handle:
    """An owned ferry handle: close() (or garbage collection) destroys it
    once. Children keep their context alive; a context closes the children
    still open before it goes (newest first), so collection order never
    matters."""

    _destroy = None  # the ferry_*_destroy name

    def __init__(self, handle, context=None, destroy=True):
        self._o = _Owned(handle, self._destroy if destroy else None)
        self.context = context
        if context is not None:
            context._adopt(self._o)

    @property
    def _h(self):
        o = self.__dict__.get("_o")
        return o.handle if o is not None else None

    @_h.setter
    def _h(self, value):
        self._o.handle = value

    @property
    def handle(self):
        h = self._h
        if not h:
            raise FerryError(101, f"this {type(self).__name__} is closed",
                             status_name="FERRY_ERR_NULL_POINTER")
        return h

    @property
    def closed(self):
        return not self._h

    def close(self):
        o = self.__dict__.get("_o")
        if o is not None:
            o.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Context(_Handle):
    """A ferry context: one backend and one device.

    backend: None/"auto" (topology decides), one name (strict) or a comma
    list; device: -1 to choose; threads: worker pool size (0: the cpuset's
    cores)."""

    _destroy = "ferry_context_destroy"

    def __init__(self, backend=None, device=-1, threads=0):
        o = _lib.ContextOptions(
            backend=backend.encode() if backend else None,
            device_index=int(device), num_threads=int(threads))
        h = ctypes.c_void_p()
        call("ferry_context_create", ctypes.byref(o), ctypes.byref(h))
        self._children = {}
        self._next_child = 0
        self._child_lock = threading.Lock()
        super().__init__(h.value)
        self._tls = threading.local()

    def _adopt(self, owned):
        with self._child_lock:
            owned.key = self._next_child
            owned.registry = self._children
            self._children[self._next_child] = owned
            self._next_child += 1

    def close(self):
        if not self._h:
            return
        with self._child_lock:
            kids = sorted(self._children.items(), reverse=True)
        for _, k in kids:  # newest first: loaders before tables and graphs
            k.close()
        self._tls = threading.local()
        super().close()

    @property
    def info(self):
        i = _lib.ContextInfo()
        call("ferry_context_get_info", self.handle, ctypes.byref(i))
        return {
            "backend": _lib.cstr(i.backend), "device_index": i.device_index,
            "device": _device_dict(i.device), "num_threads": i.num_threads,
            "lost": bool(i.lost), "numa_nodes": _lib.cstr(i.numa_nodes),
            "cpuset": _lib.cstr(i.cpuset),
        }

    @property
    def backend(self):
        """The backend's name (fixed for the context's life: cached)."""
        b = self.__dict__.get("_backend_name")
        if b is None:
            b = self._backend_name = self.info["backend"]
        return b

    @property
    def base_address_align(self):
        a = self.__dict__.get("_align")
        if a is None:
            a = self._align = max(
                int(self.info["device"]["base_address_align"]), 1)
        return a

    @property
    def stream(self):
        """The calling thread's stream of this context, made on first use,
        for calls that are not given one (a ferry stream is used by one
        thread at a time, so each thread gets its own)."""
        s = getattr(self._tls, "stream", None)
        if s is None or s.closed:
            s = self._tls.stream = Stream(self)
        return s

    def synchronize(self):
        call("ferry_context_synchronize", self.handle)

    def __repr__(self):
        if self.closed:
            return "<ferry.Context closed>"
        i = self.info
        return f"<ferry.Context {i['backend']}:{i['device_index']} " \
               f"{i['device']['name']!r}>"


class Stream(_Handle):
    """An in-order queue of work (one thread at a time)."""

    _destroy = "ferry_stream_destroy"

    def __init__(self, context, native=None):
        h = ctypes.c_void_p()
        if native is None:
            call("ferry_stream_create", context.handle, ctypes.byref(h))
        else:
            call("ferry_stream_wrap_native", context.handle,
                 ctypes.c_void_p(int(native)), ctypes.byref(h))
        super().__init__(h.value, context)
        # Python objects queued work reads or writes (NumPy arrays viewed in
        # place): kept alive until the stream is synchronized.
        self._deps = []
        self.host_fn_errors = []

    def keep(self, *objs):
        """Keep objects alive until the next synchronize()."""
        self._deps.extend(objs)

    def synchronize(self):
        try:
            call("ferry_stream_synchronize", self.handle)
        finally:
            self._deps = []

    def query(self):
        """True when idle, False while work is queued; raises a deferred
        error."""
        st = lib.ferry_stream_query(self.handle)
        if st == 400:
            return False
        check(st)
        return True

    def wait_event(self, event):
        call("ferry_stream_wait_event", self.handle, event.handle)

    @property
    def next_sequence(self):
        v = ctypes.c_uint64()
        call("ferry_stream_next_sequence", self.handle, ctypes.byref(v))
        return v.value

    @property
    def native_handle(self):
        v = ctypes.c_void_p()
        call("ferry_stream_native_handle", self.handle, ctypes.byref(v))
        return v.value

    def enqueue_host_fn(self, fn):
        """Run fn() in stream order (on a ferry thread). fn may return a
        ferry status number (None: FERRY_OK); an exception becomes the
        stream's deferred error FERRY_ERR_INTERNAL for op "host_fn", and is
        kept in self.host_fn_errors."""
        keep = []
        errors = self.host_fn_errors

        def tramp(_user):
            try:
                r = fn()
                return int(r) if r is not None else 0
            except Exception as e:
                errors.append(e)
                return 499
            finally:
                # Drop the callback once it ran (it runs exactly once).
                _pending_host_fns.pop(id(keep), None)

        cb = _lib.HOST_FN(tramp)
        keep.append(cb)
        _pending_host_fns[id(keep)] = keep
        try:
            call("ferry_stream_enqueue_host_fn", self.handle, cb, None)
        except Exception:
            _pending_host_fns.pop(id(keep), None)
            raise


_pending_host_fns = {}


class Event(_Handle):
    _destroy = "ferry_event_destroy"

    def __init__(self, context):
        h = ctypes.c_void_p()
        call("ferry_event_create", context.handle, ctypes.byref(h))
        super().__init__(h.value, context)

    def record(self, stream):
        call("ferry_event_record", self.handle, stream.handle)

    def synchronize(self):
        call("ferry_event_synchronize", self.handle)

    def query(self):
        st = lib.ferry_event_query(self.handle)
        if st == 400:
            return False
        check(st)
        return True

    def elapsed_ms(self, end):
        v = ctypes.c_double()
        call("ferry_event_elapsed_ms", self.handle, end.handle,
             ctypes.byref(v))
        return v.value


class Buffer(_Handle):
    """Memory of a context: space "host", "pinned" or "device"."""

    _destroy = "ferry_buffer_destroy"

    def __init__(self, context, size, space="device", _handle=None,
                 _keep=None):
        if _handle is None:
            h = ctypes.c_void_p()
            call("ferry_buffer_create", context.handle, space_code(space),
                 int(size), ctypes.byref(h))
            _handle = h.value
        self._keep = _keep  # e.g. the wrapped host memory's owner
        super().__init__(_handle, context)

    @classmethod
    def wrap_host(cls, context, array):
        """Wrap a NumPy array's memory in place (registered for the device);
        the buffer keeps the array alive."""
        a = np.asarray(array)
        if not a.flags.c_contiguous:
            raise ValueError("wrap_host: the array must be C-contiguous")
        h = ctypes.c_void_p()
        call("ferry_buffer_wrap_host", context.handle,
             ctypes.c_void_p(a.ctypes.data), a.nbytes, ctypes.byref(h))
        return cls(context, a.nbytes, _handle=h.value, _keep=a)

    @property
    def info(self):
        i = _lib.BufferInfo()
        call("ferry_buffer_get_info", self.handle, ctypes.byref(i))
        return {
            "space": i.space, "size": i.size, "backend": _lib.cstr(i.backend),
            "device_index": i.device_index, "host_pointer": i.host_pointer,
            "device_pointer": i.device_pointer,
            "native_handle": i.native_handle, "numa_bound": bool(i.numa_bound),
            "numa_nodes": _lib.cstr(i.numa_nodes),
        }

    @property
    def size(self):
        return self.info["size"]

    def write(self, src, offset=0, stream=None):
        """Copy a NumPy array's bytes in at `offset`; waits for the copy."""
        a = np.ascontiguousarray(src)
        s = stream or self.context.stream
        call("ferry_buffer_write_async", s.handle, self.handle, int(offset),
             ctypes.c_void_p(a.ctypes.data), a.nbytes)
        s.synchronize()  # the array is ours only for this call

    def read(self, nbytes=None, offset=0, stream=None, dtype=np.uint8):
        """A NumPy copy of `nbytes` bytes from `offset`; waits for it."""
        if nbytes is None:
            nbytes = self.size - int(offset)
        dt = np.dtype(dtype)
        out = np.empty(int(nbytes) // dt.itemsize, dt)
        s = stream or self.context.stream
        call("ferry_buffer_read_async", s.handle, self.handle, int(offset),
             ctypes.c_void_p(out.ctypes.data), out.nbytes)
        s.synchronize()
        return out

    def fill(self, value, nbytes=None, offset=0, stream=None):
        if nbytes is None:
            nbytes = self.size - int(offset)
        s = stream or self.context.stream
        call("ferry_buffer_fill_async", s.handle, self.handle, int(offset),
             int(value), int(nbytes))


def _np_strides(a):
    """Element strides of a NumPy array, or None when ferry cannot view it
    (negative or non-multiple byte strides)."""
    if a.size == 0:
        return [0] * a.ndim  # compact: nothing is read
    out = []
    for s, n in zip(a.strides, a.shape):
        if n <= 1:
            out.append(max(s // a.itemsize, 1) if s > 0 else 1)
            continue
        if s <= 0 or s % a.itemsize:
            return None
        out.append(s // a.itemsize)
    return out


class Tensor:
    """A ferry view (ferry_tensor): a buffer or host memory, a dtype, a shape
    and element strides. It keeps what it views alive.

    ``stream``: the stream whose queued work writes the tensor, if any;
    ``__dlpack__`` orders the consumer after it."""

    def __init__(self, context, t, keep=None, stream=None):
        self.context = context
        self._t = t
        self._keep = keep
        self.stream = stream

    # --- construction -----------------------------------------------------
    @classmethod
    def empty(cls, context, shape, dtype="f32", space="device"):
        """A new compact tensor in a buffer of its own."""
        shape = tuple(int(s) for s in shape)
        code = dtype_code(dtype)
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        buf = Buffer(context, n * numpy_dtype(code).itemsize, space)
        return cls.from_buffer(buf, shape, code)

    @classmethod
    def from_buffer(cls, buffer, shape, dtype="f32", byte_offset=0):
        shape = tuple(int(s) for s in shape)
        t = _lib.Tensor_t()
        arr = (ctypes.c_int64 * max(len(shape), 1))(*shape)
        call("ferry_tensor_make", buffer.handle, int(byte_offset),
             dtype_code(dtype), len(shape), arr, ctypes.byref(t))
        return cls(buffer.context, t, keep=buffer)

    @classmethod
    def from_numpy(cls, context, array, dtype=None):
        """A host view of a NumPy array, in place (not copied). dtype
        "bf16" reads a uint16 array as bf16 bit patterns."""
        a = np.asarray(array)
        code = dtype_code(dtype if dtype is not None else a.dtype)
        if numpy_dtype(code).itemsize != a.itemsize:
            raise ValueError(f"dtype {dtype_name(code)} does not match the "
                             f"array's {a.dtype}")
        return cls._host_view(context, a.ctypes.data, code, a.shape,
                              _np_strides(a), a)

    @classmethod
    def _host_view(cls, context, ptr, code, shape, strides, keep):
        if len(shape) > _lib.MAX_DIMS:
            raise ValueError(f"{len(shape)} dimensions: ferry takes at most "
                             f"{_lib.MAX_DIMS}")
        if strides is None:
            raise ValueError("ferry needs positive strides that are whole "
                             "elements (make the array contiguous)")
        t = _lib.Tensor_t()
        n = 1
        for s in shape:
            n *= int(s)
        # ferry refuses a NULL host pointer; an empty view reads nothing.
        t.host = ptr or (keep_alive_dummy.ctypes.data)
        t.dtype = code
        t.ndim = len(shape)
        for i, (s, st) in enumerate(zip(shape, strides)):
            t.shape[i] = int(s)
            t.strides[i] = int(st)
        return cls(context, t, keep=keep)

    # --- properties -------------------------------------------------------
    @property
    def struct(self):
        """The ferry_tensor (ctypes), for calls into the C API."""
        return self._t

    @property
    def dtype(self):
        return dtype_name(self._t.dtype)

    @property
    def shape(self):
        return tuple(self._t.shape[i] for i in range(self._t.ndim))

    @property
    def strides(self):
        """Element strides (compact row-major when ferry's are all 0)."""
        st = [self._t.strides[i] for i in range(self._t.ndim)]
        if all(s == 0 for s in st):
            acc, st = 1, [0] * len(st)
            for i in range(len(st) - 1, -1, -1):
                st[i] = acc
                acc *= max(self.shape[i], 1)
        return tuple(st)

    @property
    def ndim(self):
        return self._t.ndim

    @property
    def buffer(self):
        """The Buffer object this tensor was made from, if any."""
        return self._keep if isinstance(self._keep, Buffer) else None

    def buffer_info(self):
        """ferry_buffer_get_info of the viewed buffer (None: a host view)."""
        if not self._t.buffer:
            return None
        i = _lib.BufferInfo()
        call("ferry_buffer_get_info", ctypes.c_void_p(self._t.buffer),
             ctypes.byref(i))
        return {"space": i.space, "backend": _lib.cstr(i.backend),
                "device_index": i.device_index,
                "host_pointer": i.host_pointer, "size": i.size}

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return f"<ferry.Tensor {self.dtype}{list(self.shape)}>"

    # --- data -------------------------------------------------------------
    def _host_address(self):
        """The host address of element 0, or None."""
        if self._t.host:
            return self._t.host + self._t.byte_offset
        hp = self.buffer_info()["host_pointer"]
        return hp + self._t.byte_offset if hp else None

    def _extent(self):
        if any(s == 0 for s in self.shape):
            return 0
        return 1 + sum((n - 1) * s for n, s in zip(self.shape, self.strides))

    def numpy(self, copy=False):
        """The data as a NumPy array: a view of host-addressable memory (it
        keeps the tensor alive) unless copy=True or the memory is the
        device's (then a copy read on the tensor's stream). Waits for the
        tensor's stream first."""
        if self.stream is not None:
            self.stream.synchronize()
        dt = numpy_dtype(self._t.dtype)
        addr = self._host_address()
        ext = self._extent()
        if addr is not None or ext == 0:
            if ext == 0:
                flat = np.empty(0, dt)
            else:
                raw = (ctypes.c_char * (ext * dt.itemsize)).from_address(addr)
                flat = np.frombuffer(raw, dt)
                raw._ferry_owner = self  # the view keeps the tensor alive
            a = np.lib.stride_tricks.as_strided(
                flat, self.shape, tuple(s * dt.itemsize for s in self.strides))
            return a.copy() if copy else a
        s = self.stream or self.context.stream
        flat = np.empty(ext, dt)
        call("ferry_buffer_read_async", s.handle,
             ctypes.c_void_p(self._t.buffer),
             self._t.byte_offset, ctypes.c_void_p(flat.ctypes.data),
             flat.nbytes)
        s.synchronize()
        return np.lib.stride_tricks.as_strided(
            flat, self.shape, tuple(s * dt.itemsize for s in self.strides)
        ).copy()

    # DLPack (ferry.dlpack implements the capsules).
    def __dlpack__(self, stream=None, max_version=None, dl_device=None,
                   copy=None):
        from . import dlpack
        return dlpack.export(self, stream=stream, max_version=max_version,
                             dl_device=dl_device, copy=copy)

    def __dlpack_device__(self):
        from . import dlpack
        return dlpack.device_of(self)


keep_alive_dummy = np.zeros(16, np.uint8)


def as_tensor(context, x, dtype=None, write=False):
    """A ferry Tensor for x: a Tensor as is, a NumPy array or CPU PyTorch
    tensor viewed in place, anything else with __dlpack__ imported.

    On the cpu backend host memory is used as a plain host view. Other
    backends cannot read arbitrary host memory: an array aligned to the
    device's base address alignment is registered in place
    (ferry_buffer_wrap_host, zero copy); otherwise an input (write=False) is
    copied into a device buffer, and an output is refused."""
    if isinstance(x, Tensor):
        return x
    mod = type(x).__module__ or ""
    if mod.startswith("torch") and hasattr(x, "data_ptr") \
            and x.device.type == "cpu":
        t = _torch_host_view(context, x)
    elif isinstance(x, np.ndarray) or not hasattr(x, "__dlpack__"):
        t = Tensor.from_numpy(context, np.asarray(x), dtype)
    else:
        from . import dlpack
        return dlpack.from_dlpack(x, context)
    if context.backend == "cpu":
        return t
    return _device_readable(context, t, write)


def _device_readable(context, t, write):
    """A host view made usable by a device backend (see as_tensor)."""
    ext = t._extent() * numpy_dtype(t._t.dtype).itemsize
    addr = t._t.host
    align = context.base_address_align
    if ext and addr % align == 0:
        try:
            h = ctypes.c_void_p()
            call("ferry_buffer_wrap_host", context.handle,
                 ctypes.c_void_p(addr), ext, ctypes.byref(h))
            buf = Buffer(context, ext, _handle=h.value, _keep=t._keep)
            v = _lib.Tensor_t()
            ctypes.pointer(v)[0] = t._t
            v.host = None
            v.buffer = h.value
            return Tensor(context, v, keep=buf)
        except FerryError:
            if write:
                raise
    if write:
        raise ValueError(
            f"a {context.backend} op cannot write this host array in place "
            f"(its address is not {align}-byte aligned): pass a ferry Tensor")
    # An input: copy its extent into device memory, strides kept.
    buf = Buffer(context, max(ext, 1), "device")
    if ext:
        raw = (ctypes.c_char * ext).from_address(addr)
        buf.write(np.frombuffer(raw, np.uint8))
    v = _lib.Tensor_t()
    ctypes.pointer(v)[0] = t._t
    v.host = None
    v.buffer = buf.handle
    return Tensor(context, v, keep=buf)


_TORCH_DTYPES = {
    "torch.float32": "f32", "torch.float16": "f16", "torch.bfloat16": "bf16",
    "torch.float64": "f64", "torch.int32": "i32", "torch.int64": "i64",
    "torch.uint8": "u8", "torch.int8": "i8", "torch.int16": "i16",
}


def dtype_of(x):
    """The ferry dtype name of a Tensor, NumPy array or PyTorch tensor."""
    if isinstance(x, Tensor):
        return x.dtype
    name = _TORCH_DTYPES.get(str(getattr(x, "dtype", "")))
    if name is not None:
        return name
    return dtype_name(dtype_code(np.asarray(x).dtype))


def _torch_host_view(context, x):
    name = _TORCH_DTYPES.get(str(x.dtype))
    if name is None:
        raise ValueError(f"torch dtype {x.dtype} has no ferry dtype")
    strides = list(x.stride())
    for i, n in enumerate(x.shape):
        if n <= 1:
            strides[i] = max(strides[i], 1)
        elif strides[i] <= 0:
            strides = None
            break
    return Tensor._host_view(context, x.data_ptr(), DTYPES[name],
                             tuple(x.shape), strides, x)
