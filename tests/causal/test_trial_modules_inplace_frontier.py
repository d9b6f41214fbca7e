"""``method="attribution"`` (and the exact method's ``screen=``) on a model that modifies a layer's
output in place after it (``ReLU(inplace=True)``, ``g.add_(1)``), on the hook path (a forward
``torch.fx`` cannot trace): the frontier search ran its trial rows on the tensor it then compared
with, so the in-place ops made the next mixing module's input look like the layer's own output and
the estimate fell back to AtP's at ``h``, silently. References: the first-order step at the
frontier by hand (float64), and exact effects where the suffix after the frontier is linear."""

import torch
from torch import nn

from lightning_causal.causal import SetTo, unit_effects


class _InPlaceMLP(nn.Module):
    """``c(tanh(b(h) + 1))`` with the add and the tanh in place; ``c`` is linear, so the first-order
    step at ``c``'s input is exact. The ``if`` on a value keeps ``torch.fx`` out (hook path)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 3)

    def forward(self, x):
        if float(x.abs().sum()) < 0:
            return None
        g = self.b(torch.relu(self.a(x)) * 2)
        g.add_(1)
        torch.tanh_(g)
        return self.c(g)


class _InPlaceCNN(nn.Module):
    """conv -> batch norm -> ReLU(inplace=True) -> conv -> ReLU(inplace=True) -> linear, on the hook path."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.bn, self.r = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True)
        self.c2, self.r2, self.fc = nn.Conv2d(4, 4, 3), nn.ReLU(inplace=True), nn.Linear(64, 3)

    def forward(self, x):
        if float(x.abs().sum()) < 0:
            return None
        return self.fc(self.r2(self.c2(self.r(self.bn(self.c1(x))))).flatten(1))


def _brute_exact(model: nn.Module, x: torch.Tensor, layer: nn.Module, value: float) -> torch.Tensor:
    """``f_t(x) − f_t(x | do(h_u := value))`` by a forward hook per unit (t: the clean prediction)."""
    with torch.no_grad():
        clean = model(x)
        t = clean.argmax(1, keepdim=True)
        cols = []
        for u in range(6):
            def hook(_m, _i, o, u=u):
                o = o.clone()
                o[:, u] = value
                return o
            handle = layer.register_forward_hook(hook)
            cols.append((clean.gather(1, t) - model(x).gather(1, t))[:, 0])
            handle.remove()
    return torch.stack(cols, 1)


def test_attribution_after_in_place_ops_on_the_hook_path_is_exact_where_the_suffix_is_linear():
    torch.manual_seed(0)
    model = _InPlaceMLP().double().eval()
    x = torch.randn(7, 4, dtype=torch.float64)
    estimate, info = unit_effects(model, x, "b", SetTo(0.3), method="attribution", return_info=True)
    assert info.path == "hooks"
    torch.testing.assert_close(estimate, _brute_exact(model, x, model.b, 0.3), rtol=0, atol=1e-12)


def test_attribution_after_an_in_place_relu_on_the_hook_path_takes_the_step_at_the_next_conv():
    torch.manual_seed(0)
    model = _InPlaceCNN().double().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.running_var.uniform_(0.5, 2)
        model.bn.weight.uniform_(0.5, 2)
        model.bn.bias.uniform_(-1, 1)
    x = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    estimate, info = unit_effects(model, x, "bn", SetTo(0.3), method="attribution", return_info=True)
    assert info.path == "hooks"
    # by hand: z = relu(bn(c1(x))) is c2's input; ê_u = Σ (z − z|do(h_u := 0.3)) ∂f_t/∂z
    with torch.no_grad():
        h = model.bn(model.c1(x))
        t = model(x).argmax(1)
    z = torch.relu(h).requires_grad_(True)
    f = model.fc(torch.relu(model.c2(z)).flatten(1)).gather(1, t[:, None]).sum()
    (grad,) = torch.autograd.grad(f, z)
    expected = torch.stack([((torch.relu(h) - torch.relu(torch.cat([h[:, :u], torch.full_like(h[:, u:u + 1], 0.3), h[:, u + 1:]], 1)))
                             * grad).flatten(1).sum(1) for u in range(4)], 1)
    torch.testing.assert_close(estimate, expected, rtol=0, atol=1e-12)
    screened = unit_effects(model, x, "bn", SetTo(0.3), screen=2, return_info=True)
    exact_cols = screened[1].exact
    torch.testing.assert_close(screened[0][:, ~exact_cols], expected[:, ~exact_cols], rtol=0, atol=1e-12)
