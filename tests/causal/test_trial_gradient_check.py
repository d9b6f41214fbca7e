"""First-order estimates (method="atp"/"attribution", screen=) follow autograd: a forward that cuts
the gradient on part of the computation after the layer (a detached branch, a straight-through
estimator, a torch.no_grad() side branch) made them silently wrong. A check on two probe rows
compares autograd's directional derivative with a central difference and warns."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, unit_effects
from tests.helpers.bert import tiny_bert, token_batch
from tests.helpers.models import DigitsCNN, all_hook_counts, seeded

G = torch.Generator().manual_seed(3)
X = torch.randn(8, 6, generator=G, dtype=torch.float64)


class Detached(nn.Module):
    """``a(h) + b(h.detach())`` with ``h = tanh(l1(x))``: autograd sees the ``a`` branch only."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.act, self.a, self.b = nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 1), nn.Linear(5, 1)

    def forward(self, x):
        h = self.act(self.l1(x))
        return self.a(h) + self.b(h.detach())


class StraightThrough(nn.Module):
    """Rounding with a straight-through gradient, then a smooth nonlinearity: autograd's derivative
    is tanh'(q), the model's 0 (rounding is piecewise constant)."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.act, self.out = nn.Linear(6, 5), nn.Identity(), nn.Linear(5, 1)

    def forward(self, x):
        h = self.act(self.l1(x))
        q = h + (torch.round(4 * h) / 4 - h).detach()
        return self.out(torch.tanh(q) + 0.5 * h)


class NoGradSide(nn.Module):
    """A side branch computed under torch.no_grad() feeds the output."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.act, self.a, self.b = nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 1), nn.Linear(5, 1)

    def forward(self, x):
        h = self.act(self.l1(x))
        with torch.no_grad():
            side = self.b(h * h)
        return self.a(h) + side


def _caught(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [w for w in caught if "misses part" in str(w.message)]


def _hooked_output(model: nn.Module, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    handle = model.act.register_forward_hook(lambda _m, _i, _o: h)
    try:
        return model(x).squeeze(-1)
    finally:
        handle.remove()


def test_atp_on_a_detached_branch_warns_naming_the_layer_and_keeps_its_numbers():
    model = seeded(Detached(), 0).double().eval()
    rng = torch.get_rng_state()
    est, caught = _caught(lambda: unit_effects(model, X, "act", method="atp"))
    assert len(caught) == 1 and caught[0].filename == __file__  # points at the caller
    message = str(caught[0].message)
    assert "layer 'act'" in message and "method='exact'" in message and "%" in message
    # the numbers are autograd's, as before: (h - 0) * d f / d h through the a branch only
    with torch.no_grad():
        h = torch.tanh(model.l1(X))
    h.requires_grad_(True)
    (grad,) = torch.autograd.grad(model.a(h).sum(), h)
    torch.testing.assert_close(est, h.detach() * grad, atol=1e-12, rtol=0)
    # ... which are far from the model's true first-order term (a central difference through both branches)
    eps = 1e-6
    true = torch.stack([(_hooked_output(model, X, h.detach() + eps * h.detach() * e)
                         - _hooked_output(model, X, h.detach() - eps * h.detach() * e)) / (2 * eps)
                        for e in torch.eye(5, dtype=torch.float64)], 1).detach()
    assert (est - true).norm() > 0.3 * true.norm()
    assert torch.equal(rng, torch.get_rng_state()) and all_hook_counts(model) == 0
    assert all(p.grad is None for p in model.parameters()) and not model.training


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kwargs", [{"method": "atp"}, {"method": "attribution"}, {"screen": 2}])
def test_first_order_estimates_warn_on_a_detached_branch(kwargs, dtype):
    model = seeded(Detached(), 1).to(dtype).eval()
    _, caught = _caught(lambda: unit_effects(model, X.to(dtype), "act", **kwargs))
    assert len(caught) == 1


def test_a_straight_through_estimator_warns_with_atp():
    model = seeded(StraightThrough(), 2).double().eval()
    _, caught = _caught(lambda: unit_effects(model, X, "act", method="atp"))
    assert len(caught) == 1


def test_a_no_grad_side_branch_warns_on_the_full_forward_path():
    # (torch.fx drops the no_grad block, so the suffix path differentiates through it: no fault there)
    model = seeded(NoGradSide(), 3).double().eval()
    _, caught = _caught(lambda: unit_effects(model, X, "act", method="atp", use_suffix=False))
    assert len(caught) == 1


def test_input_attribution_warns_on_a_detached_input_branch():
    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(6, 1), nn.Linear(6, 1)

        def forward(self, x):
            return self.a(x) + self.b(torch.tanh(x).detach())

    _, caught = _caught(lambda: input_effects(seeded(Model(), 4).eval(), X.float(), method="attribution"))
    assert len(caught) == 1 and "the inputs" in str(caught[0].message) and caught[0].filename == __file__


def test_plain_models_do_not_warn():
    from lightning_causal.causal.effects import gradient_check

    torch.manual_seed(0)
    mlp = seeded(nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3)), 5).eval()
    cnn = seeded(DigitsCNN(batch_norm=True), 6)
    x_img = torch.rand(6, 1, 8, 8, generator=G)
    x_img[:, :, :2] = 0  # a blank band: many activations at one value, next to the ReLU's kinks
    cnn.train()
    with torch.no_grad():
        cnn(torch.rand(16, 1, 8, 8, generator=G))  # running statistics that are not the defaults
    cnn.eval()
    bert = tiny_bert(0, dtype=torch.float32)
    ids, mask = token_batch()
    calls = [lambda layer=layer, method=method: unit_effects(mlp, X.float(), layer, method=method) for layer in ("1", "2", "3") for method in ("atp", "attribution")]
    calls += [lambda layer=layer, method=method: unit_effects(cnn, x_img, layer, method=method) for layer in ("conv1", "bn1", "conv2")
              for method in ("atp", "attribution")]
    calls += [lambda layer=layer: unit_effects(bert, ids, layer, method="atp", unit_dim=-1, additional_forward_args={"attention_mask": mask})
              for layer in ("bert.encoder.layer.0.intermediate", "bert.encoder.layer.1.output.dense")]
    calls += [lambda: unit_effects(bert, ids, "bert.encoder.layer.0.attention.self", method="attribution", num_heads=4,
                                   additional_forward_args={"attention_mask": mask}),
              lambda: input_effects(mlp, X.float(), method="attribution")]
    checked = []
    with pytest.MonkeyPatch.context() as mp:  # every call runs the check, and none warns
        mp.setattr(gradient_check, "probe_gaps", lambda run, probe=gradient_check.probe_gaps, **kw: checked.append(probe(run, **kw)) or checked[-1])
        for call in calls:
            _, caught = _caught(call)
            assert not caught
    assert len(checked) == len(calls) and all(g is not None and float(g.max()) <= gradient_check.TOLERANCE for g in checked)


def test_half_precision_is_not_checked():
    # a central difference in half precision is mostly rounding: the check stays out
    model = seeded(Detached(), 10).to(torch.bfloat16).eval()
    _, caught = _caught(lambda: unit_effects(model, X.to(torch.bfloat16), "act", method="atp"))
    assert not caught


def test_a_model_that_draws_noise_is_not_checked():
    class Noisy(Detached):
        def forward(self, x):
            return super().forward(x) + 0.1 * torch.randn(x.shape[0], 1, dtype=x.dtype)

    _, caught = _caught(lambda: unit_effects(seeded(Noisy(), 7).double().eval(), X, "act", method="atp"))
    assert not caught


def test_effects_run_on_inference_tensors():
    # Forward compared the inputs' version counters after each pass (a74e236): inference tensors
    # (made under torch.inference_mode(), as in Lightning's validation) track none, and every call raised
    model = seeded(nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2)), 8).double().eval()
    expected = [unit_effects(model, X, "1"), input_effects(model, X), unit_effects(model, X, "1", method="atp")]
    with torch.inference_mode():
        x = X.clone()
        got = [unit_effects(model, x, "1"), input_effects(model, x), unit_effects(model, x, "1", method="atp")]
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kwargs", [{"method": "attribution"}, {"screen": 2}])
def test_a_complete_cut_behind_the_frontier_is_refused_naming_the_layer(kwargs):
    # method="atp" refused it; the frontier estimate raised autograd's "element 0 of tensors does not
    # require grad" (l1 -> batch norm -> tanh are unit-local: the frontier is the input of `a`)
    class Cut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l1, self.bn, self.act, self.a, self.b = nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 1), nn.Linear(6, 1)

        def forward(self, x):
            return self.a(self.act(self.bn(self.l1(x)))).detach() + self.b(x)

    with pytest.raises(ValueError, match="reach layer 'l1'.*method='exact'"):
        unit_effects(seeded(Cut(), 9).double().eval(), X, "l1", **kwargs)


@pytest.mark.parametrize("seed", [0, 3, 4])
def test_max_pooling_ties_on_blank_digit_backgrounds_do_not_warn(seed):
    # with a Gaussian direction the check fired on these (tied maxima of the blank background, dead
    # ReLU units: no derivative there); along the value times random factors per channel they stay tied
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().data, dtype=torch.float32).view(-1, 1, 8, 8) / 16
    torch.manual_seed(seed)
    cnn = DigitsCNN(batch_norm=True).train()
    with torch.no_grad():
        cnn(x[:256])
    cnn.eval()
    for layer in ("conv1", "bn1", "relu1"):
        _, caught = _caught(lambda layer=layer: unit_effects(cnn, x[seed * 16:(seed + 1) * 16], layer, method="atp"))
        assert not caught, layer


@pytest.mark.parametrize("seed", range(4))
def test_a_detached_branch_of_a_tenth_of_the_derivative_warns(seed):
    # the size a trial measured: the `b` branch (autograd misses it) is 0.1 x the `a` branch, plus noise
    torch.manual_seed(seed)
    model = Detached().double().eval()
    with torch.no_grad():
        model.b.weight.copy_(0.1 * model.a.weight + 0.1 * model.a.weight.abs().mean() * torch.randn_like(model.a.weight))
    _, caught = _caught(lambda: unit_effects(model, X, "act", method="atp"))
    assert len(caught) == 1
