"""ferry.torch: LayerNorm/RMSNorm autograd Functions against PyTorch's own
ops and gradcheck, and Adan against the float64 reference of the rule.

ferry has no float64 kernels: float64 inputs are rounded to float32 for
ferry, so gradcheck runs in float64 with float32-appropriate tolerances
(eps 1e-3, atol/rtol 1e-2); the exact check is against PyTorch's float64
layer_norm gradients at float32 tolerances."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import ferry.torch as ft  # noqa: E402
from test_ops import adan_reference  # noqa: E402

F = torch.nn.functional


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_layer_norm_matches_torch_forward_and_backward():
    for shape in [(1, 1), (7, 33), (2, 3, 129), (0, 4)]:
        cols = shape[-1]
        x = (torch.randn(*shape) * 2 + 0.5).requires_grad_()
        w = torch.randn(cols, requires_grad=True)
        b = torch.randn(cols, requires_grad=True)
        y = ft.layer_norm(x, w, b, 1e-5)
        x64, w64, b64 = (t.detach().double().requires_grad_()
                         for t in (x, w, b))
        r = F.layer_norm(x64, (cols,), w64, b64, 1e-5)
        torch.testing.assert_close(y.double(), r.detach(), rtol=1e-4,
                                   atol=1e-4)
        if x.numel() == 0:
            continue
        g = torch.randn(*shape)
        got = torch.autograd.grad(y, (x, w, b), g)
        want = torch.autograd.grad(r, (x64, w64, b64), g.double())
        for a, e in zip(got, want):
            torch.testing.assert_close(a.double(), e, rtol=1e-3, atol=1e-4)


def test_layer_norm_without_affine_and_module():
    x = torch.randn(5, 17, requires_grad=True)
    y = ft.layer_norm(x)
    torch.testing.assert_close(y, F.layer_norm(x, (17,)), rtol=1e-4,
                               atol=1e-5)
    (gx,) = torch.autograd.grad(y.sum() + (y ** 2).sum(), (x,))
    x2 = x.detach().requires_grad_()
    r = F.layer_norm(x2, (17,))
    (rx,) = torch.autograd.grad(r.sum() + (r ** 2).sum(), (x2,))
    torch.testing.assert_close(gx, rx, rtol=1e-3, atol=1e-4)
    m = ft.LayerNorm(17)
    m.weight.data.normal_()
    ref = torch.nn.LayerNorm(17)
    ref.load_state_dict(m.state_dict())
    torch.testing.assert_close(m(x), ref(x), rtol=1e-4, atol=1e-5)


def test_gradcheck_float64_inputs():
    x = torch.randn(4, 9, dtype=torch.float64, requires_grad=True)
    w = torch.randn(9, dtype=torch.float64, requires_grad=True)
    b = torch.randn(9, dtype=torch.float64, requires_grad=True)
    tol = dict(eps=1e-3, atol=1e-2, rtol=1e-2)
    assert torch.autograd.gradcheck(
        lambda a, c, d: ft.layer_norm(a, c, d), (x, w, b), **tol)
    assert torch.autograd.gradcheck(lambda a, c: ft.rms_norm(a, c), (x, w),
                                    **tol)


def test_gradcheck_detects_a_wrong_gradient():
    """The check above can fail: a gradient off by 1% is caught."""

    class Wrong(ft.LayerNormFunction):
        @staticmethod
        def backward(fctx, dy):
            dx, dw, db, e = ft.LayerNormFunction.backward(fctx, dy)
            return dx * 1.1, dw, db, e

    x = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    assert not torch.autograd.gradcheck(
        lambda a: Wrong.apply(a, None, None, 1e-5), (x,), eps=1e-3,
        atol=1e-2, rtol=1e-2, raise_exception=False)


def test_rms_norm_against_float64():
    x = torch.randn(6, 31, requires_grad=True)
    w = torch.randn(31, requires_grad=True)
    y = ft.RMSNorm(31)
    y.weight.data.copy_(w.detach())
    out = y(x)
    x64, w64 = x.detach().double().requires_grad_(), \
        w.detach().double().requires_grad_()
    ref = x64 * torch.rsqrt((x64 ** 2).mean(1, keepdim=True) + 1e-5) * w64
    torch.testing.assert_close(out.double(), ref.detach(), rtol=1e-4,
                               atol=1e-5)
    g = torch.randn(6, 31)
    gx, gw = torch.autograd.grad(out, (x, y.weight), g)
    rx, rw = torch.autograd.grad(ref, (x64, w64), g.double())
    torch.testing.assert_close(gx.double(), rx, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(gw.double(), rw, rtol=1e-3, atol=1e-4)


def test_adan_optimizer_matches_the_reference():
    lin = torch.nn.Linear(7, 3)
    extra = torch.nn.Parameter(torch.randn(11))
    p0 = [p.detach().clone() for p in (lin.weight, lin.bias, extra)]
    opt = ft.Adan([{"params": [lin.weight, lin.bias]},
                   {"params": [extra], "weight_decay": 0.0}],
                  lr=0.02, weight_decay=0.05)
    grads = []
    for step in range(5):
        opt.zero_grad()
        loss = (lin(torch.randn(4, 7)) ** 2).sum() + (extra ** 3).sum()
        loss.backward()
        grads.append([p.grad.detach().clone()
                      for p in (lin.weight, lin.bias, extra)])
        opt.step()
    g0 = [np.concatenate([g[0].numpy().ravel(), g[1].numpy().ravel()])
          for g in grads]
    want0 = adan_reference(np.concatenate([p0[0].numpy().ravel(),
                                           p0[1].numpy().ravel()]),
                           g0, 0.02, 0.98, 0.92, 0.99, 1e-8, 0.05)[-1]
    got0 = np.concatenate([lin.weight.detach().numpy().ravel(),
                           lin.bias.detach().numpy().ravel()])
    np.testing.assert_allclose(got0, want0, rtol=2e-5, atol=2e-6)
    want1 = adan_reference(p0[2].numpy(), [g[2].numpy() for g in grads],
                           0.02, 0.98, 0.92, 0.99, 1e-8, 0.0)[-1]
    np.testing.assert_allclose(extra.detach().numpy(), want1, rtol=2e-5,
                               atol=2e-6)
    # A learning-rate schedule reaches ferry.
    opt.param_groups[1]["lr"] = 0.0
    before = extra.detach().clone()
    opt.zero_grad()
    (extra ** 2).sum().backward()
    opt.step()
    assert torch.equal(extra.detach(), before)
    assert opt.ferry_state(1, "m").shape == (11,)


def test_adan_state_dict_resumes_exactly():
    def model():
        torch.manual_seed(3)
        return torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(),
                                   torch.nn.Linear(4, 2))

    a = model()
    opt_a = ft.Adan(a.parameters(), lr=0.05, weight_decay=0.01)
    data = [torch.randn(3, 5) for _ in range(5)]

    def step(m, opt, x):
        opt.zero_grad()
        (m(x) ** 2).sum().backward()
        opt.step()

    for x in data[:3]:
        step(a, opt_a, x)
    sd = opt_a.state_dict()
    assert sd["ferry"][0]["step"] == 3
    b = model()
    b.load_state_dict(a.state_dict())
    opt_b = ft.Adan(b.parameters(), lr=0.05, weight_decay=0.01)
    opt_b.load_state_dict(sd)
    for x in data[3:]:
        step(a, opt_a, x)
        step(b, opt_b, x)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    # Without the ferry state the resumed run differs (the check can fail).
    c = model()
    c.load_state_dict(b.state_dict())
    opt_c = ft.Adan(c.parameters(), lr=0.05, weight_decay=0.01)
    step(c, opt_c, data[0])
    step(b, opt_b, data[0])
    assert not all(torch.equal(pb, pc)
                   for pb, pc in zip(b.parameters(), c.parameters()))
