"""PyTorch integration: ferry's LayerNorm/RMSNorm as autograd Functions and
modules, and ferry's fused Adan as a torch.optim.Optimizer.

Tensors are CPU tensors viewed in place (no copies) and run on a cpu ferry
context (``context()``; set another with ``set_context``). ferry computes
in float32, float16 and bfloat16; float64 tensors (e.g. for
torch.autograd.gradcheck) are rounded to float32 for ferry and the results
converted back, so their precision is float32's.
"""

import torch as _torch

from . import core as _core
from .adan import Adan as _FerryAdan
from .norm import norm_backward, norm_forward

_ctx = None


def context():
    """The ferry context the torch integration runs on (cpu by default)."""
    global _ctx
    if _ctx is None or _ctx.closed:
        _ctx = _core.Context("cpu")
    return _ctx


def set_context(ctx):
    global _ctx
    _ctx = ctx


_NATIVE = (_torch.float32, _torch.float16, _torch.bfloat16)


def _prep(t):
    """A contiguous CPU tensor of a dtype ferry computes in."""
    if t is None:
        return None
    if t.device.type != "cpu":
        raise ValueError(f"ferry.torch works on CPU tensors (got {t.device})")
    if t.dtype not in _NATIVE:
        t = t.to(_torch.float32)
    return t.detach().contiguous()


class _NormFunction(_torch.autograd.Function):
    kind = "layer"

    @classmethod
    def _forward(cls, fctx, x, weight, bias, eps):
        shape, dtype = x.shape, x.dtype
        cols = shape[-1]
        x2 = _prep(x).reshape(-1, cols)
        w = _prep(weight)
        b = _prep(bias)
        rows = x2.shape[0]
        y = _torch.empty_like(x2)
        rstd = _torch.empty(rows, dtype=_torch.float32)
        mean = _torch.empty(rows, dtype=_torch.float32) \
            if cls.kind == "layer" else None
        if rows:
            norm_forward(x2, w, b, cls.kind, eps, y=y, mean=mean, rstd=rstd,
                         context=context())
        fctx.save_for_backward(x2, w, mean, rstd)
        fctx.eps = eps
        fctx.meta = (shape, dtype, weight is not None, bias is not None,
                     None if weight is None else weight.dtype,
                     None if bias is None else bias.dtype)
        return y.reshape(shape).to(dtype)

    @classmethod
    def _backward(cls, fctx, dy):
        x2, w, mean, rstd = fctx.saved_tensors
        shape, dtype, has_w, has_b, wdt, bdt = fctx.meta
        dy2 = _prep(dy).reshape(x2.shape).to(x2.dtype)
        dx = _torch.empty_like(x2)
        cols = x2.shape[1]
        gdt = w.dtype if w is not None else _torch.float32
        dw = _torch.zeros(cols, dtype=gdt) if has_w else None
        db = _torch.zeros(cols, dtype=gdt) if has_b else None
        if x2.shape[0]:
            norm_backward(dy2, x2, rstd, w, mean, cls.kind, fctx.eps, dx=dx,
                          dgamma=dw, dbeta=db, want_dgamma=has_w,
                          want_dbeta=has_b, context=context())
        dx = dx.reshape(shape).to(dtype)
        return (dx, None if dw is None else dw.to(wdt),
                None if db is None else db.to(bdt))


class LayerNormFunction(_NormFunction):
    """y = LayerNorm(x) over the last dimension: apply(x, weight, bias,
    eps); weight and bias may be None."""

    kind = "layer"

    @staticmethod
    def forward(fctx, x, weight, bias, eps=1e-5):
        return LayerNormFunction._forward(fctx, x, weight, bias, eps)

    @staticmethod
    def backward(fctx, dy):
        return LayerNormFunction._backward(fctx, dy) + (None,)


class RMSNormFunction(_NormFunction):
    """y = RMSNorm(x) over the last dimension: apply(x, weight, eps)."""

    kind = "rms"

    @staticmethod
    def forward(fctx, x, weight, eps=1e-5):
        return RMSNormFunction._forward(fctx, x, weight, None, eps)

    @staticmethod
    def backward(fctx, dy):
        dx, dw, _ = RMSNormFunction._backward(fctx, dy)
        return dx, dw, None


def layer_norm(x, weight=None, bias=None, eps=1e-5):
    return LayerNormFunction.apply(x, weight, bias, eps)


def rms_norm(x, weight=None, eps=1e-5):
    return RMSNormFunction.apply(x, weight, eps)


class LayerNorm(_torch.nn.Module):
    """Like torch.nn.LayerNorm over the last dimension, run by ferry."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True,
                 dtype=None):
        super().__init__()
        if not isinstance(normalized_shape, int):
            (normalized_shape,) = tuple(normalized_shape)
        self.normalized_shape = (normalized_shape,)
        self.eps = eps
        if elementwise_affine:
            self.weight = _torch.nn.Parameter(
                _torch.ones(normalized_shape, dtype=dtype))
            self.bias = _torch.nn.Parameter(
                _torch.zeros(normalized_shape, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return LayerNormFunction.apply(x, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, ferry"


class RMSNorm(_torch.nn.Module):
    """RMSNorm over the last dimension (weight only), run by ferry."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True,
                 dtype=None):
        super().__init__()
        if not isinstance(normalized_shape, int):
            (normalized_shape,) = tuple(normalized_shape)
        self.normalized_shape = (normalized_shape,)
        self.eps = eps
        if elementwise_affine:
            self.weight = _torch.nn.Parameter(
                _torch.ones(normalized_shape, dtype=dtype))
        else:
            self.register_parameter("weight", None)

    def forward(self, x):
        return RMSNormFunction.apply(x, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, ferry"


class Adan(_torch.optim.Optimizer):
    """Adan (sail-sg/Adan's rule, see include/ferry/adan.h) as one fused
    ferry step over every parameter.

    Parameters must be contiguous CPU float32/float16/bfloat16 tensors; they
    are updated in place. betas, eps, max_grad_norm, no_prox and
    check_finite are the optimizer's (the same for every group); lr and
    weight_decay are per group and may change between steps (schedules). A
    parameter without a gradient steps with a zero gradient (the official
    code skips it instead). The optimizer's state (m, v, n, previous
    gradient) lives in ferry: read it with ferry_state(); state_dict() and
    load_state_dict() carry it (with the step counters) under "ferry"."""

    def __init__(self, params, lr=1e-3, betas=(0.98, 0.92, 0.99), eps=1e-8,
                 weight_decay=0.0, max_grad_norm=0.0, no_prox=False,
                 check_finite=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Invalid betas: {betas}")
        defaults = dict(lr=lr, weight_decay=weight_decay)
        super().__init__(params, defaults)
        self._opts = dict(betas=tuple(betas), eps=eps,
                          max_grad_norm=max_grad_norm, no_prox=no_prox,
                          check_finite=check_finite)
        self._ferry = None
        self._applied = None

    def _build(self):
        opt = _FerryAdan(context(), lr=self.param_groups[0]["lr"],
                         weight_decay=self.param_groups[0]["weight_decay"],
                         **self._opts)
        for g in self.param_groups:
            for p in g["params"]:
                if p.device.type != "cpu" or not p.is_contiguous() or \
                        p.dtype not in _NATIVE:
                    raise ValueError("ferry.torch.Adan needs contiguous CPU "
                                     "float32/float16/bfloat16 parameters")
            opt.add_group([p.data for p in g["params"]], lr=g["lr"],
                          weight_decay=g["weight_decay"])
        self._ferry = opt
        self._applied = [(g["lr"], g["weight_decay"])
                         for g in self.param_groups]

    @_torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with _torch.enable_grad():
                loss = closure()
        if self._ferry is None:
            self._build()
        for i, g in enumerate(self.param_groups):
            cur = (g["lr"], g["weight_decay"])
            if cur != self._applied[i]:
                self._ferry.set_group(i, *cur)
                self._applied[i] = cur
        params, grads = [], []
        for g in self.param_groups:
            for p in g["params"]:
                params.append(p.data)
                gr = p.grad
                if gr is None:
                    gr = _torch.zeros_like(p)
                elif gr.is_sparse:
                    raise RuntimeError("ferry.torch.Adan: sparse gradients")
                grads.append(gr.detach().contiguous())
        self._ferry.step(params, grads)
        return loss

    _STATES = ("m", "v", "n", "grad_prev")

    def state_dict(self):
        """torch's state dict plus ferry's state: per group the step
        counter and the state vectors (float32 tensors), under "ferry"."""
        sd = super().state_dict()
        if self._ferry is not None:
            groups = []
            for i, g in enumerate(self.param_groups):
                names = self._STATES
                if any(p.dtype != _torch.float32 for p in g["params"]):
                    names = names + ("master",)
                e = {w: _torch.from_numpy(self._ferry.read_state(i, w))
                     for w in names}
                e["step"] = self._ferry.get_step(i)
                groups.append(e)
            sd["ferry"] = groups
        return sd

    def load_state_dict(self, state_dict):
        sd = dict(state_dict)
        groups = sd.pop("ferry", None)
        super().load_state_dict(sd)
        if groups is None:
            return
        if len(groups) != len(self.param_groups):
            raise ValueError(f"the state has {len(groups)} groups, the "
                             f"optimizer {len(self.param_groups)}")
        if self._ferry is None:
            self._build()
        for i, e in enumerate(groups):
            for w, v in e.items():
                if w != "step":
                    self._ferry.write_state(i, w, v.numpy())
            self._ferry.set_step(i, int(e["step"]))

    @property
    def last_step_skipped(self):
        return self._ferry is not None and self._ferry.last_step_skipped

    def ferry_state(self, group, which):
        """A state vector ("m", "v", "n", "grad_prev") of a group as a
        float32 tensor (the group's parameters one after another)."""
        if self._ferry is None:
            raise RuntimeError("no step was taken yet")
        return _torch.from_numpy(self._ferry.read_state(group, which))
