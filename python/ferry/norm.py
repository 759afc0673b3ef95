"""Fused LayerNorm and RMSNorm, forward and backward (include/ferry/norm.h).

Inputs may be ferry Tensors, NumPy arrays or CPU PyTorch tensors (viewed in
place). Outputs not given are made (NumPy on the cpu backend). Without a
`stream` a call waits and returns its results; with one it is queued."""

import ctypes

from . import _lib
from .core import as_tensor, dtype_of
from .dlpack import default_context
from .errors import call
from ._util import new_output, opt_tensor

KINDS = {"layer": 1, "rms": 2}
ACCUMULATE = 1


def _opts(kind, eps, accumulate=False):
    return _lib.NormOptions(kind=KINDS[kind] if isinstance(kind, str)
                            else int(kind), eps=float(eps),
                            flags=ACCUMULATE if accumulate else 0)


def norm_forward(x, gamma=None, beta=None, kind="layer", eps=1e-5, y=None,
                 mean=None, rstd=None, save_stats=True, stream=None,
                 context=None):
    """Returns (y, mean, rstd); mean is None for RMSNorm, and both
    statistics are None with save_stats=False."""
    ctx = context or default_context()
    xt = as_tensor(ctx, x)
    if xt.ndim != 2:
        raise ValueError(f"x must be 2-D (rows, cols), got {xt.shape}")
    rows = xt.shape[0]
    if y is None:
        y = new_output(ctx, xt.shape, xt.dtype)
    if save_stats:
        if rstd is None:
            rstd = new_output(ctx, (rows,), "f32")
        if mean is None and kind in ("layer", 1):
            mean = new_output(ctx, (rows,), "f32")
    ts = [opt_tensor(ctx, v, w) for v, w in ((gamma, False), (beta, False),
                                             (y, True), (mean, True),
                                             (rstd, True))]
    o = _opts(kind, eps)
    s = stream or ctx.stream
    s.keep(x, xt, gamma, beta, y, mean, rstd, ts)
    call("ferry_norm_forward", s.handle, ctypes.byref(o),
         ctypes.byref(xt.struct), *[p for _, p in ts])
    if stream is None:
        s.synchronize()
    return y, mean, rstd


def norm_backward(dy, x, rstd, gamma=None, mean=None, kind="layer",
                  eps=1e-5, dx=None, dgamma=None, dbeta=None,
                  want_dgamma=True, want_dbeta=True, accumulate=False,
                  stream=None, context=None):
    """Returns (dx, dgamma, dbeta) (None where not asked for)."""
    ctx = context or default_context()
    xt = as_tensor(ctx, x)
    cols = xt.shape[1] if xt.ndim == 2 else 0
    if dx is None:
        dx = new_output(ctx, xt.shape, xt.dtype)
    gdt = dtype_of(gamma) if gamma is not None else "f32"
    if dgamma is None and want_dgamma:
        dgamma = new_output(ctx, (cols,), gdt)
    if dbeta is None and want_dbeta and kind in ("layer", 1):
        dbeta = new_output(ctx, (cols,), gdt)
    dyt = as_tensor(ctx, dy)
    ts = [opt_tensor(ctx, v, w) for v, w in (
        (gamma, False), (mean, False), (rstd, False), (dx, True),
        (dgamma, True), (dbeta, True))]
    o = _opts(kind, eps, accumulate)
    s = stream or ctx.stream
    s.keep(dy, dyt, x, xt, ts, gamma, mean, rstd, dx, dgamma, dbeta)
    call("ferry_norm_backward", s.handle, ctypes.byref(o),
         ctypes.byref(dyt.struct), ctypes.byref(xt.struct),
         *[p for _, p in ts])
    if stream is None:
        s.synchronize()
    return dx, dgamma, dbeta


def layer_norm(x, gamma=None, beta=None, eps=1e-5, **kw):
    """y of LayerNorm over the last dimension of a 2-D x."""
    return norm_forward(x, gamma, beta, "layer", eps, save_stats=False,
                        **kw)[0]


def rms_norm(x, gamma=None, eps=1e-5, **kw):
    return norm_forward(x, gamma, None, "rms", eps, save_stats=False, **kw)[0]
