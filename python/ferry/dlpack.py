"""The DLPack protocol both ways (capsules made and consumed with ctypes).

Export (``Tensor.__dlpack__``): a versioned capsule "dltensor_versioned" when
the consumer passes ``max_version >= (1, 0)``, the legacy "dltensor"
otherwise (PyTorch 1.13, NumPy 1.x). ferry's export (ferry_tensor_to_dlpack,
which holds a reference to the buffer) is wrapped in a struct of the
capsule's kind whose deleter calls ferry's and then lets go of the context,
so the data stays valid however long the consumer keeps it. A consumer
renames the capsule "used_..." and owns the struct; a capsule nobody
consumed calls the deleter when it is collected.

Import (``from_dlpack``): any object with ``__dlpack__`` (PyTorch, CuPy, JAX,
NumPy) or a capsule; the capsule is renamed "used_..." once ferry owns the
struct, and the ferry buffer calls its deleter when it is destroyed.

Streams: for host memory (kDLCPU, kDLCUDAHost, kDLROCMHost) the producer
finishes its work before handing the capsule over (``stream`` must be None);
for device memory the consumer's stream (an int, CUDA/HIP semantics: 1 the
legacy default stream, 2 per-thread, -1 no ordering) is made to wait for the
tensor's stream on the device.
"""

import ctypes
import threading

from . import _lib
from .core import Buffer, Context, Tensor, MEMORY_HOST, \
    MEMORY_PINNED_HOST, Event, Stream
from .errors import call, FerryError

kDLCPU = 1
kDLCUDA = 2
kDLCUDAHost = 3
kDLOpenCL = 4
kDLROCM = 10
kDLROCMHost = 11

_NAME_LEGACY = b"dltensor"
_NAME_VERSIONED = b"dltensor_versioned"
_USED_LEGACY = b"used_dltensor"
_USED_VERSIONED = b"used_dltensor_versioned"

_api = ctypes.pythonapi
_CAPSULE_DESTRUCTOR = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_api.PyCapsule_New.restype = ctypes.py_object
_api.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                               _CAPSULE_DESTRUCTOR]
_api.PyCapsule_IsValid.restype = ctypes.c_int
_api.PyCapsule_IsValid.argtypes = [ctypes.py_object, ctypes.c_char_p]
_api.PyCapsule_GetName.restype = ctypes.c_char_p
_api.PyCapsule_GetName.argtypes = [ctypes.py_object]
_api.PyCapsule_GetPointer.restype = ctypes.c_void_p
_api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_api.PyCapsule_SetName.restype = ctypes.c_int
_api.PyCapsule_SetName.argtypes = [ctypes.py_object, ctypes.c_char_p]
# The destructor sees a capsule being deallocated: pass it as a raw pointer
# (no reference counting on a dying object).
_IsValidRaw = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_void_p,
                                ctypes.c_char_p)(("PyCapsule_IsValid", _api))
_GetPointerRaw = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p,
                                   ctypes.c_char_p)(
    ("PyCapsule_GetPointer", _api))

# Exported structs still owned by ferry's side of the exchange: address ->
# (the struct, ferry's export, the context, the tensor). An entry goes when the
# struct's deleter runs (consumer done, or capsule collected unconsumed).
_live = {}
_live_lock = threading.Lock()


def live_exports():
    """Exported tensors whose deleter has not run yet (for tests)."""
    with _live_lock:
        return len(_live)


def _finish(addr):
    with _live_lock:
        entry = _live.pop(addr, None)
    if entry is not None:
        ferry_export = entry[1]
        ferry_export.contents.deleter(ferry_export)


def _legacy_deleter(ptr):
    _finish(ctypes.cast(ptr, ctypes.c_void_p).value)


def _versioned_deleter(ptr):
    _finish(ctypes.cast(ptr, ctypes.c_void_p).value)


_LEGACY_DELETER = _lib.DL_DELETER(_legacy_deleter)
_VERSIONED_DELETER = _lib.DLV_DELETER(_versioned_deleter)


def _capsule_destructor(cap):
    # Called for every capsule we made: only an unconsumed one still has its
    # original name; a consumer renamed it and owns the struct.
    for name, kind in ((_NAME_VERSIONED, _lib.DLManagedTensorVersioned),
                       (_NAME_LEGACY, _lib.DLManagedTensor)):
        if _IsValidRaw(cap, name):
            p = _GetPointerRaw(cap, name)
            m = ctypes.cast(p, ctypes.POINTER(kind))
            m.contents.deleter(m)
            return


_CAPSULE_DESTRUCTOR_FN = _CAPSULE_DESTRUCTOR(_capsule_destructor)


def device_of(tensor):
    """(device_type, device_id) of a ferry Tensor, as DLPack numbers it."""
    if tensor.struct.host:
        return (kDLCPU, 0)
    info = tensor.buffer_info()
    be = info["backend"]
    sp = info["space"]
    if sp == MEMORY_HOST:
        return (kDLCPU, 0)
    if sp == MEMORY_PINNED_HOST:
        return ({"cuda": kDLCUDAHost, "hip": kDLROCMHost}.get(be, kDLCPU), 0)
    if be in ("cuda", "hip"):
        return (kDLCUDA if be == "cuda" else kDLROCM, info["device_index"])
    if info["host_pointer"]:
        return (kDLCPU, 0)
    raise BufferError(f"ferry: {be} device memory has no address a framework "
                      "can import (it is not shared with the host)")


def _order_consumer(tensor, dev_type, stream):
    """Make the consumer's view of the data safe (see the module notes)."""
    if dev_type in (kDLCUDA, kDLROCM):
        if stream == -1 or tensor.stream is None:
            return
        if stream == 0 and dev_type == kDLCUDA:
            raise BufferError("stream 0 is ambiguous for CUDA (DLPack)")
        native = 1 if stream is None and dev_type == kDLCUDA else (stream or 0)
        try:
            consumer = Stream(tensor.context, native=native)
        except FerryError:
            # The backend cannot wrap that stream: finish the work instead.
            tensor.stream.synchronize()
            return
        ev = Event(tensor.context)
        try:
            ev.record(tensor.stream)
            consumer.wait_event(ev)
        finally:
            ev.close()
            consumer.close()
        return
    if stream is not None and stream != -1:
        raise BufferError(f"stream must be None for device type {dev_type} "
                          f"(got {stream!r})")
    if tensor.stream is not None and stream != -1:
        tensor.stream.synchronize()


def export(tensor, stream=None, max_version=None, dl_device=None, copy=None):
    """A DLPack capsule viewing `tensor` (see the module notes)."""
    dev = device_of(tensor)
    if dl_device is not None and tuple(dl_device) != dev:
        raise BufferError(f"ferry exports only on its own device {dev}, "
                          f"not {tuple(dl_device)}")
    if copy:
        raise BufferError("ferry's __dlpack__ does not copy (copy=True)")
    _order_consumer(tensor, dev[0], stream)
    m = ctypes.POINTER(_lib.DLManagedTensorVersioned)()
    call("ferry_tensor_to_dlpack", tensor.context.handle,
         ctypes.byref(tensor.struct), ctypes.byref(m))
    dl = m.contents.dl_tensor
    # Fold the byte offset into the pointer: older consumers (PyTorch 1.13)
    # ignore byte_offset.
    if dl.byte_offset:
        dl.data = (dl.data or 0) + dl.byte_offset
        dl.byte_offset = 0
    versioned = max_version is not None and tuple(max_version)[0] >= 1
    if versioned:
        w = _lib.DLManagedTensorVersioned()
        w.version = m.contents.version
        w.flags = m.contents.flags
        w.deleter = _VERSIONED_DELETER
        name = _NAME_VERSIONED
    else:
        w = _lib.DLManagedTensor()
        w.deleter = _LEGACY_DELETER
        name = _NAME_LEGACY
    w.dl_tensor = dl  # shape and strides point into ferry's export
    w.manager_ctx = None
    addr = ctypes.addressof(w)
    with _live_lock:
        # The tensor too: a host view's memory (a NumPy array) is kept
        # alive by the tensor, not by ferry's export.
        _live[addr] = (w, m, tensor.context, tensor)
    try:
        return _api.PyCapsule_New(addr, name, _CAPSULE_DESTRUCTOR_FN)
    except BaseException:
        _finish(addr)
        raise


_default = None
_default_lock = threading.Lock()


def default_context():
    """The context ferry's Python calls use when none is given: made on first
    use with the default backend choice (FERRY_BACKEND, then topology)."""
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            _default = Context()
        return _default


def set_default_context(ctx):
    global _default
    with _default_lock:
        _default = ctx


def _is_capsule(x):
    return type(x).__name__ == "PyCapsule"


def _producer_capsule(obj, context, stream):
    if _is_capsule(obj):
        return obj
    if not hasattr(obj, "__dlpack__"):
        raise TypeError(f"{type(obj).__name__} has no __dlpack__")
    dev = obj.__dlpack_device__() if hasattr(obj, "__dlpack_device__") \
        else (kDLCPU, 0)
    consumer_stream = None
    if dev[0] in (kDLCUDA, kDLROCM):
        s = stream if stream is not None else context.stream
        native = s.native_handle
        consumer_stream = native if native else (1 if dev[0] == kDLCUDA
                                                 else 0)
    try:
        return obj.__dlpack__(stream=consumer_stream, max_version=(1, 0))
    except TypeError:
        pass  # a producer before DLPack 1.0 (max_version unknown)
    try:
        return obj.__dlpack__(stream=consumer_stream)
    except TypeError:
        if consumer_stream is not None:
            raise
        return obj.__dlpack__()


def from_dlpack(obj, context=None, stream=None):
    """A ferry Tensor viewing `obj`'s memory in place: a PyTorch, CuPy or JAX
    tensor, a NumPy array, or a DLPack capsule. `context` (default:
    default_context()) must be able to use the memory (host memory: any
    backend; CUDA/ROCm memory: that backend, that device). `stream`: the
    ferry stream that will read it (default: the context's own)."""
    if context is None:
        context = default_context()
    cap = _producer_capsule(obj, context, stream)
    name = _api.PyCapsule_GetName(cap)
    if name == _NAME_VERSIONED:
        fn, used = "ferry_buffer_from_dlpack", _USED_VERSIONED
    elif name == _NAME_LEGACY:
        fn, used = "ferry_buffer_from_dlpack_legacy", _USED_LEGACY
    else:
        raise BufferError(f"capsule named {name!r} is not an unconsumed "
                          "DLPack tensor")
    ptr = _api.PyCapsule_GetPointer(cap, name)
    h = ctypes.c_void_p()
    view = _lib.Tensor_t()
    call(fn, context.handle, ctypes.c_void_p(ptr), ctypes.byref(h),
         ctypes.byref(view))
    # ferry owns the struct now: the capsule must not call its deleter.
    _api.PyCapsule_SetName(cap, used)
    buf = Buffer(context, 0, _handle=h.value)
    return Tensor(context, view, keep=buf)


def to_dlpack(tensor, max_version=None):
    """A capsule of `tensor` (legacy unless max_version >= (1, 0)), e.g. for
    torch.utils.dlpack.from_dlpack in PyTorch 1.13."""
    return export(tensor, max_version=max_version)
