"""DLPack both ways with NumPy and PyTorch 1.13: both capsule kinds, the
ownership rules (renaming, deleters called once), strides, offsets,
dtypes, and the stream argument."""

import ctypes
import gc

import numpy as np
import pytest

import ferry
from ferry import dlpack

torch = pytest.importorskip("torch")
import torch.utils.dlpack as tud  # noqa: E402

_name = ctypes.pythonapi.PyCapsule_GetName
_name.restype = ctypes.c_char_p
_name.argtypes = [ctypes.py_object]


def host_tensor(ctx, a, offset=0):
    """A ferry tensor in a ferry host buffer holding a copy of `a`,
    `offset` bytes into the buffer."""
    b = ferry.Buffer(ctx, offset + a.nbytes, "host")
    b.fill(0xFF)
    b.write(np.ascontiguousarray(a), offset=offset)
    return ferry.Tensor.from_buffer(b, a.shape, a.dtype, offset)


def test_device_and_capsule_kinds(ctx, rng):
    t = host_tensor(ctx, rng.standard_normal((3, 5)).astype(np.float32))
    assert t.__dlpack_device__() == (dlpack.kDLCPU, 0)
    base = dlpack.live_exports()
    legacy = t.__dlpack__()
    assert _name(legacy) == b"dltensor"
    legacy2 = t.__dlpack__(max_version=(0, 8))
    assert _name(legacy2) == b"dltensor"
    versioned = t.__dlpack__(max_version=(1, 0))
    assert _name(versioned) == b"dltensor_versioned"
    assert dlpack.live_exports() == base + 3
    # Unconsumed capsules call the deleter when collected.
    del legacy, legacy2, versioned
    gc.collect()
    assert dlpack.live_exports() == base


def test_numpy_consumes_ferry_and_keeps_data_alive(ctx, rng):
    for shape in [(1,), (7,), (13, 17), (2, 3, 5), (0, 4)]:
        a = rng.standard_normal(shape).astype(np.float32)
        t = host_tensor(ctx, a, offset=24)  # a byte offset to fold
        n = np.from_dlpack(t)
        assert n.shape == a.shape and np.array_equal(n, a)
        addr = t._host_address()
        if a.size:
            assert n.ctypes.data == addr  # zero copy
        # The view outlives the tensor and its buffer handle.
        t.buffer.close()
        del t
        gc.collect()
        assert np.array_equal(n, a)


def test_exported_host_view_keeps_the_array_alive(ctx, rng):
    a = rng.standard_normal(1000).astype(np.float32)
    want = a.copy()
    t = ferry.Tensor.from_numpy(ctx, a)
    y = torch.utils.dlpack.from_dlpack(t)
    del a, t
    gc.collect()
    junk = [np.ones(1000, np.float32) for _ in range(50)]  # reuse freed memory
    assert np.array_equal(y.numpy(), want)
    del junk


def test_ferry_consumes_numpy_in_place(ctx, rng):
    a = rng.standard_normal((11, 3)).astype(np.float32)
    t = ferry.from_dlpack(a, ctx)
    assert t.shape == (11, 3) and t.dtype == "f32"
    assert t.numpy().ctypes.data == a.ctypes.data
    a[0, 0] = 42.0
    assert t.numpy()[0, 0] == 42.0
    # A NumPy array that ferry wrote (a gather's output) is seen by NumPy.
    for dt in (np.int32, np.int64, np.uint8, np.float64, np.float16):
        x = rng.integers(0, 100, (4, 6)).astype(dt)
        assert np.array_equal(ferry.from_dlpack(x, ctx).numpy(), x)


def test_torch_round_trips_legacy(ctx, rng):
    # torch -> ferry (legacy capsule, renamed when consumed)
    x = torch.randn(9, 4)
    cap = tud.to_dlpack(x)
    t = ferry.from_dlpack(cap, ctx)
    assert _name(cap) == b"used_dltensor"
    assert np.array_equal(t.numpy(), x.numpy())
    with pytest.raises(BufferError):  # consumed once only
        ferry.from_dlpack(cap, ctx)
    # torch's deleter runs when ferry's buffer goes; data stays valid
    # meanwhile even if torch drops its own reference.
    del x
    gc.collect()
    assert t.numpy().shape == (9, 4)
    # ferry -> torch through __dlpack__ and through a capsule.
    a = rng.standard_normal((5, 7)).astype(np.float32)
    ft = host_tensor(ctx, a, offset=8)
    y = tud.from_dlpack(ft)
    assert torch.equal(y, torch.from_numpy(a))
    assert y.data_ptr() == ft._host_address()
    z = tud.from_dlpack(ferry.to_dlpack(ft))
    assert torch.equal(z, y)
    # torch writes, ferry sees (same memory).
    y[1, 2] = -3.0
    assert ft.numpy()[1, 2] == -3.0
    base = dlpack.live_exports()
    del y, z
    gc.collect()
    assert dlpack.live_exports() == base - 2


def test_torch_strided_and_dtypes(ctx):
    x = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    xt = x.t()  # non-contiguous
    t = ferry.from_dlpack(xt, ctx)
    assert t.shape == (6, 4) and t.strides == (1, 6)
    assert np.array_equal(t.numpy(), xt.numpy())
    b = torch.randn(3, 5).to(torch.bfloat16)
    tb = ferry.from_dlpack(b, ctx)
    assert tb.dtype == "bf16"
    back = tud.from_dlpack(tb)
    assert back.dtype == torch.bfloat16 and torch.equal(back, b)
    for dt in (torch.float16, torch.int32, torch.int64, torch.uint8):
        v = (torch.arange(10) % 7).to(dt)
        assert torch.equal(tud.from_dlpack(ferry.from_dlpack(v, ctx)), v)


def test_versioned_capsule_consumed_by_ferry(ctx, rng):
    a = rng.standard_normal((6, 2)).astype(np.float32)
    src = host_tensor(ctx, a)
    cap = src.__dlpack__(max_version=(1, 0))
    t = ferry.from_dlpack(cap, ctx)
    assert _name(cap) == b"used_dltensor_versioned"
    assert np.array_equal(t.numpy(), a)
    base = dlpack.live_exports()
    del cap
    gc.collect()
    assert dlpack.live_exports() == base  # ferry owns it now
    t.buffer.close()  # ferry's buffer calls our deleter
    assert dlpack.live_exports() == base - 1


def test_stream_argument(ctx, rng):
    a = rng.standard_normal(16).astype(np.float32)
    t = host_tensor(ctx, a)
    # Host memory: the producer synchronizes; stream must be None.
    with pytest.raises(BufferError):
        t.__dlpack__(stream=5)
    # Work queued on the tensor's stream completes before the export.
    s = ferry.Stream(ctx)
    t.buffer.fill(0, stream=s)
    t.stream = s
    n = np.from_dlpack(t)
    assert np.all(n == 0)
    with pytest.raises(BufferError):
        t.__dlpack__(dl_device=(2, 0))
    with pytest.raises(BufferError):
        t.__dlpack__(copy=True)


def test_opencl_exports(ocl_ctx, rng):
    """OpenCL memory exports as kDLCPU where the host can address it
    (pinned host buffers; device buffers only with a host pointer), and
    refuses otherwise with BufferError (never a bad pointer)."""
    a = rng.standard_normal((4, 9)).astype(np.float32)
    p = ferry.Tensor.empty(ocl_ctx, a.shape, "f32", "pinned")
    p.buffer.write(a)
    assert p.__dlpack_device__() == (dlpack.kDLCPU, 0)
    assert np.array_equal(np.from_dlpack(p), a)
    t = ferry.Tensor.empty(ocl_ctx, a.shape, "f32", "device")
    t.buffer.write(a)
    if t.buffer.info["host_pointer"]:
        assert t.__dlpack_device__() == (dlpack.kDLCPU, 0)
        assert np.array_equal(np.from_dlpack(t), a)
    else:
        with pytest.raises(BufferError):
            t.__dlpack__()
        assert np.array_equal(t.numpy(), a)  # a copy read on a stream
