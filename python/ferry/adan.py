"""The fused Adan optimizer step (include/ferry/adan.h)."""

import ctypes

import numpy as np

from . import _lib
from .core import _Handle, as_tensor
from .dlpack import default_context
from .errors import call

STATES = {"m": 0, "v": 1, "n": 2, "grad_prev": 3, "master": 4}


class Adan(_Handle):
    """Adan with the official implementation's rule (see adan.h).

        opt = ferry.Adan(ctx, lr=1e-3)
        opt.add_group([w, b])            # shapes and dtypes fix the state
        opt.step([w, b], [gw, gb])       # each iteration (waits unless a
                                         # stream is given)
    """

    _destroy = "ferry_adan_destroy"

    def __init__(self, context=None, lr=1e-3, betas=(0.98, 0.92, 0.99),
                 eps=1e-8, weight_decay=0.0, max_grad_norm=0.0,
                 no_prox=False, check_finite=False, master_weights=True):
        ctx = context or default_context()
        o = _lib.AdanOptions(
            lr=float(lr), beta1=float(betas[0]), beta2=float(betas[1]),
            beta3=float(betas[2]), eps=float(eps),
            weight_decay=float(weight_decay),
            max_grad_norm=float(max_grad_norm), no_prox=int(bool(no_prox)),
            check_finite=int(bool(check_finite)),
            master_weights=int(bool(master_weights)))
        h = ctypes.c_void_p()
        call("ferry_adan_create", ctx.handle, ctypes.byref(o),
             ctypes.byref(h))
        super().__init__(h.value, ctx)
        self._count = 0
        self._lr, self._wd = float(lr), float(weight_decay)

    def _tensors(self, xs, write=False):
        ts = [as_tensor(self.context, x, write=write) for x in xs]
        arr = (_lib.Tensor_t * max(len(ts), 1))()
        for i, t in enumerate(ts):
            arr[i] = t.struct
        return ts, arr

    def add_group(self, params, lr=None, weight_decay=None):
        """Adds a group; returns its index. lr/weight_decay None: the
        optimizer's."""
        ts, arr = self._tensors(params)
        g = None
        if lr is not None or weight_decay is not None:
            g = _lib.AdanGroupOptions(
                lr=float(lr if lr is not None else self._defaults[0]),
                weight_decay=float(weight_decay if weight_decay is not None
                                   else self._defaults[1]))
        out = ctypes.c_int()
        call("ferry_adan_add_group", self.handle,
             ctypes.byref(g) if g is not None else None, arr, len(ts),
             ctypes.byref(out))
        self._count += len(ts)
        return out.value

    @property
    def _defaults(self):
        return (self.__dict__.get("_lr", 1e-3), self.__dict__.get("_wd", 0.0))

    def set_group(self, group, lr, weight_decay=0.0):
        g = _lib.AdanGroupOptions(lr=float(lr),
                                  weight_decay=float(weight_decay))
        call("ferry_adan_set_group", self.handle, int(group), ctypes.byref(g))

    def step(self, params, grads, stream=None):
        """One step over every group (tensors in the order added)."""
        pt, parr = self._tensors(params, write=True)
        gt, garr = self._tensors(grads)
        if len(pt) != len(gt):
            raise ValueError(f"{len(pt)} parameters but {len(gt)} gradients")
        s = stream or self.context.stream
        s.keep(params, grads, pt, gt, parr, garr)
        call("ferry_adan_step", self.handle, parr, garr, len(pt), s.handle)
        if stream is None:
            s.synchronize()

    def get_step(self, group=0):
        v = ctypes.c_uint64()
        call("ferry_adan_get_step", self.handle, int(group), ctypes.byref(v))
        return v.value

    def set_step(self, group, step):
        call("ferry_adan_set_step", self.handle, int(group), int(step))

    @property
    def last_step_skipped(self):
        v = ctypes.c_int()
        call("ferry_adan_last_step_skipped", self.handle, ctypes.byref(v))
        return bool(v.value)

    def restart(self):
        call("ferry_adan_restart", self.handle)

    def state_length(self, group=0):
        v = ctypes.c_uint64()
        call("ferry_adan_state_length", self.handle, int(group),
             ctypes.byref(v))
        return v.value

    def read_state(self, group, which):
        """One state vector ("m", "v", "n", "grad_prev", "master") as f32."""
        n = self.state_length(group)
        out = np.empty(n, np.float32)
        call("ferry_adan_read_state", self.handle, int(group), STATES[which],
             out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), n)
        return out

    def write_state(self, group, which, values):
        a = np.ascontiguousarray(values, np.float32).ravel()
        call("ferry_adan_write_state", self.handle, int(group), STATES[which],
             a.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), a.shape[0])
