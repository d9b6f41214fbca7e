"""The attribution screen: first-order estimates of unit effects (exact on a linear suffix, close on
a ReLU network) and `screen=m` (exact values for the screened units, the estimate elsewhere)."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal.audits import UnitImportanceAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import (
    MeanOf,
    Scale,
    SetTo,
    Zero,
    capture,
    input_effects,
    patch_mask,
    unit_effects,
)
from lightning_causal.causal.engine.ranking import spearman
from lightning_causal.models import ResNet18
from tests.helpers.bert import tiny_bert, token_batch
from tests.helpers.models import DigitsCNN, all_hook_counts, seeded

G = torch.Generator().manual_seed(0)
X_IMG = torch.rand(6, 1, 8, 8, generator=G, dtype=torch.float64)
X_TAB = torch.randn(7, 4, generator=G, dtype=torch.float64)


def _linear_suffix_mlp():
    # the suffix after "1" (Tanh) is Linear -> Linear: linear in h
    return seeded(nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5), nn.Linear(5, 3)), 1).double().eval()


def _linear_suffix_cnn():
    return seeded(nn.Sequential(
        nn.Conv2d(1, 5, 3, padding=1), nn.ReLU(), nn.Conv2d(5, 4, 3, padding=1), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(16, 3),
    ), 2).double().eval()


class TokenMixer(nn.Module):
    """[N, T, 8] hidden states, heads of the first projection; a linear suffix (mean over tokens)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.act, self.proj, self.out = nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        return self.out(self.proj(self.act(self.inp(x))).mean(1))


@pytest.mark.parametrize("intervention", [Zero(), SetTo(0.7), Scale(-0.5), "mean", "grid"])
def test_attribution_is_exact_on_a_linear_suffix(intervention):
    for model, x, layer, layout in [
        (_linear_suffix_mlp(), X_TAB, "1", {}),
        (_linear_suffix_cnn(), X_IMG, "1", {}),
        (seeded(TokenMixer(), 3).double().eval(), torch.randn(5, 4, 3, generator=G, dtype=torch.float64), "act", {"num_heads": 2}),
        (seeded(TokenMixer(), 3).double().eval(), torch.randn(5, 4, 3, generator=G, dtype=torch.float64), "act", {"unit_dim": -1}),
    ]:
        iv = intervention
        if iv == "mean":
            with capture(model, [layer]) as acts:
                model(x)
            iv = MeanOf(acts[layer])
        elif iv == "grid":
            iv = [SetTo(v) for v in (-1.0, 0.0, 0.5, 2.0)]
        exact = unit_effects(model, x, layer, iv, target=1, **layout)
        est, info = unit_effects(model, x, layer, iv, target=1, method="attribution", return_info=True, **layout)
        torch.testing.assert_close(est, exact, atol=1e-10, rtol=0)
        assert info.method == "attribution" and not info.exact.any() and torch.equal(info.estimate, est)
        assert exact.abs().max() > 1e-3


def test_attribution_is_close_on_a_relu_network():
    model = seeded(DigitsCNN(), 4).double().eval()
    for layer in ("conv2", "fc1"):
        small = unit_effects(model, X_IMG, layer, Scale(0.98))  # a small intervention: first order dominates
        est = unit_effects(model, X_IMG, layer, Scale(0.98), method="attribution")
        assert (est - small).norm() <= 0.1 * small.norm()  # 0.049 (conv2: kinks of the ReLU after fc1) and 1e-13 (fc1)
        exact = unit_effects(model, X_IMG, layer).abs().mean(0)  # zero ablation: a ranking close to exact
        rough = unit_effects(model, X_IMG, layer, method="attribution").abs().mean(0)
        assert float(spearman(exact[None], rough[None])[0]) > 0.8


def _leaf_grad(model, x, module, pre: bool):
    """(value, ∂f_t/∂value) of a module's input (pre) or output, by a hand-written hook."""
    store = {}

    def hook_pre(_m, args):
        store["v"] = args[0].detach().requires_grad_(True)
        return (store["v"],)

    def hook_out(_m, _i, out):
        store["v"] = out.detach().requires_grad_(True)
        return store["v"]

    handle = module.register_forward_pre_hook(hook_pre) if pre else module.register_forward_hook(hook_out)
    try:
        logits = model(x)
        (g,) = torch.autograd.grad(logits.gather(1, logits.argmax(1)[:, None]).sum(), store["v"])
    finally:
        handle.remove()
    return store["v"].detach(), g


def test_frontier_attribution_computes_batch_norm_and_relu_exactly():
    model = seeded(ResNet18(num_classes=3, width=4, blocks=(1, 1)), 2).double().eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_var.fill_(2.0)
    x = torch.rand(4, 3, 8, 8, generator=G, dtype=torch.float64)
    block = model.layers[1]
    est, info = unit_effects(model, x, "layers.1.c1", method="attribution", return_info=True)
    atp = unit_effects(model, x, "layers.1.c1", method="atp")
    h, gh = _leaf_grad(model, x, block.c1, pre=False)
    z, gz = _leaf_grad(model, x, block.c2, pre=True)  # the frontier: c2's input = relu(b1(h))
    hand = []
    for u in range(8):
        hu = h.clone()
        hu[:, u] = 0.0
        hand.append(((z - F.relu(block.b1(hu))) * gz).flatten(1).sum(1))
    torch.testing.assert_close(est, torch.stack(hand, 1), atol=1e-10, rtol=0)
    torch.testing.assert_close(atp, (h * gh).flatten(2).sum(2), atol=1e-10, rtol=0)
    assert (est - atp).abs().max() > 1e-3  # batch norm moves the zeroed channel: the estimates differ
    assert info.method == "attribution"


def test_frontier_attribution_through_an_operation_that_mixes_units():
    class Softmaxed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l1, self.l2, self.head = nn.Linear(3, 5), nn.Linear(5, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.head(torch.tanh(self.l2(torch.softmax(self.l1(x), 1))))

    model = seeded(Softmaxed(), 4).double().eval()
    x = torch.randn(6, 3, generator=G, dtype=torch.float64)
    est = unit_effects(model, x, "l1", method="attribution")  # one partial run per (unit, sample) row
    h, _ = _leaf_grad(model, x, model.l1, pre=False)
    z, gz = _leaf_grad(model, x, model.l2, pre=True)
    hand = []
    for u in range(5):
        hu = h.clone()
        hu[:, u] = 0.0
        hand.append(((z - torch.softmax(hu, 1)) * gz).sum(1))
    torch.testing.assert_close(est, torch.stack(hand, 1), atol=1e-10, rtol=0)


def test_no_frontier_across_a_skip_connection():
    class Skip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l1, self.act, self.l2, self.head = nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 5), nn.Linear(5, 2)

        def forward(self, x):
            a = self.l1(x)
            return self.head(self.l2(self.act(a)) + a)  # `a` also bypasses l2

    model = seeded(Skip(), 3).double().eval()
    x = torch.randn(6, 3, generator=G, dtype=torch.float64)
    torch.testing.assert_close(unit_effects(model, x, "l1", method="attribution"), unit_effects(model, x, "l1", method="atp"),
                               atol=1e-12, rtol=0)


class _Siamese(nn.Module):  # `act` runs twice per forward; the suffix after it is linear
    def __init__(self) -> None:
        super().__init__()
        self.enc, self.act, self.head = nn.Linear(4, 6), nn.Tanh(), nn.Linear(12, 3)

    def forward(self, x):
        return self.head(torch.cat([self.act(self.enc(x[:, :4])), self.act(self.enc(x[:, 4:]))], 1))


class _Unrolled(nn.Module):  # a linear cell called once per time step: h_t = W h_{t-1} + U x_t
    def __init__(self) -> None:
        super().__init__()
        self.inp, self.cell, self.head = nn.Linear(3, 5), nn.Linear(5, 5), nn.Linear(5, 2)

    def forward(self, x):
        h = torch.zeros(x.shape[0], 5, dtype=x.dtype)
        for t in range(x.shape[1]):
            h = self.cell(h) + self.inp(x[:, t])
        return self.head(h)


@pytest.mark.parametrize("method", ["attribution", "atp"])
def test_attribution_of_a_layer_called_twice_in_parallel_sums_both_calls(method):
    # linear after the layer and the two calls independent: the first-order estimate must equal
    # the exact effect of setting the unit at both calls (a gradient at the first call only misses
    # the second)
    model, x = seeded(_Siamese(), 4).double().eval(), torch.randn(6, 8, generator=G, dtype=torch.float64)
    exact = unit_effects(model, x, "act", Zero(), target=1)
    with torch.no_grad():
        base, brute = model(x)[:, 1], []
        for u in range(6):
            handle = model.act.register_forward_hook(lambda _m, _i, out, u=u: out.index_fill(1, torch.tensor([u]), 0.0))
            brute.append(base - model(x)[:, 1])
            handle.remove()
    torch.testing.assert_close(exact, torch.stack(brute, 1), atol=1e-12, rtol=0)
    torch.testing.assert_close(unit_effects(model, x, "act", Zero(), target=1, method=method), exact, atol=1e-12, rtol=0)


@pytest.mark.parametrize("intervention", [Zero(), SetTo(0.7)], ids=["zero", "set"])
def test_attribution_of_a_cell_unrolled_over_time_is_the_derivative_along_every_call(intervention):
    # the unit set at every one of T chained calls: f along h_u(α) = b + α (h_u − b) at every call is
    # a polynomial in α, so no first-order estimate is exact; the estimate must be df/dα at α = 1
    model, x = seeded(_Unrolled(), 5).double().eval(), torch.randn(6, 4, 3, generator=G, dtype=torch.float64)
    b = 0.0 if isinstance(intervention, Zero) else float(intervention.value)  # SetTo keeps 0.7 in float32
    one = torch.ones((), dtype=torch.float64)
    ref = torch.stack([torch.autograd.functional.jacobian(lambda a, u=u: _along(model, x, u, b, a), one) for u in range(5)], 1)
    got = unit_effects(model, x, "cell", intervention, target=1, method="atp")
    torch.testing.assert_close(got, ref, atol=1e-12, rtol=0)
    exact = unit_effects(model, x, "cell", intervention, target=1)
    assert (got - exact).abs().max() > 1e-3  # chained calls: not exact, as documented


def _along(model, x, u, b, alpha):
    keep = torch.ones(5, dtype=x.dtype).index_fill(0, torch.tensor([u]), 0.0)
    handle = model.cell.register_forward_hook(lambda _m, _i, out: out * keep + (1 - keep) * (b + alpha * (out - b)))
    try:
        return model(x)[:, 1]
    finally:
        handle.remove()


def test_attribution_through_the_hook_split_equals_autograd_by_hand():
    model = tiny_bert(1)
    ids, mask = token_batch()
    layer = "bert.encoder.layer.0.attention.self"
    est, info = unit_effects(model, ids, layer, num_heads=4, method="attribution", return_info=True,
                             additional_forward_args={"attention_mask": mask})
    assert info.path == "hooks"
    leaf = {}

    def hook(_m, _i, out):
        leaf["h"] = out[0].detach().requires_grad_(True)
        return (leaf["h"], *out[1:])

    handle = model.get_submodule(layer).register_forward_hook(hook)
    try:
        logits = model(ids, attention_mask=mask).logits
        t = logits.argmax(1)
        (grad,) = torch.autograd.grad(logits.gather(1, t[:, None]).sum(), leaf["h"])
    finally:
        handle.remove()
    ref = (leaf["h"] * grad).detach().view(5, 7, 4, 8).sum((1, 3))
    torch.testing.assert_close(est, ref, atol=1e-10, rtol=0)
    assert all(p.grad is None for p in model.parameters())


def test_screen_returns_exact_values_for_the_screened_units_and_marks_the_rest():
    model = seeded(DigitsCNN(), 5).double().eval()
    full = unit_effects(model, X_IMG, "conv2")
    est = unit_effects(model, X_IMG, "conv2", method="attribution")
    screened, info = unit_effects(model, X_IMG, "conv2", screen=5, return_info=True)
    chosen = est.abs().mean(0).topk(5).indices
    assert info.exact.sum() == 5 and torch.equal(info.exact.nonzero().squeeze(1).sort().values, chosen.sort().values)
    torch.testing.assert_close(screened[:, info.exact], full[:, info.exact], atol=1e-10, rtol=0)
    torch.testing.assert_close(screened[:, ~info.exact], est[:, ~info.exact], atol=1e-10, rtol=0)
    torch.testing.assert_close(info.estimate, est, atol=1e-10, rtol=0)
    assert info.to_dict()["exact_units"] == sorted(chosen.tolist())
    everything, info_all = unit_effects(model, X_IMG, "conv2", screen=100, return_info=True)
    torch.testing.assert_close(everything, full, atol=1e-10, rtol=0)
    assert info_all.exact.all()


def test_screen_with_selected_units_and_a_do_grid():
    model = seeded(DigitsCNN(), 6).double().eval()
    grid = [SetTo(v, units=[1, 4, 7, 9]) for v in (0.0, 1.0)]
    full = unit_effects(model, X_IMG, "fc1", grid)
    screened, info = unit_effects(model, X_IMG, "fc1", grid, screen=2, return_info=True)
    assert info.units.tolist() == [1, 4, 7, 9] and int(info.exact.sum()) == 2
    torch.testing.assert_close(screened[:, info.exact], full[:, info.exact], atol=1e-10, rtol=0)


def test_no_trace_left_by_the_gradient_pass():
    model = seeded(DigitsCNN(batch_norm=True), 7).train()
    stats = [b.clone() for b in model.buffers()]
    unit_effects(model, X_IMG.float(), "conv1", screen=3)
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(stats, model.buffers()))
    assert model.training and all_hook_counts(model) == 0


def test_audit_takes_a_screen():
    model = seeded(DigitsCNN(), 8).double().eval()
    result = UnitImportanceAudit(["conv2"], top_k=4, screen=6).run(model, Probe(X_IMG))
    exact_units = result.meta["exact_units/conv2"]
    assert len(exact_units) == 6
    assert all(row["exact"] == (row["unit"] in exact_units) for row in result.tables["top_units/conv2"])


def test_input_attribution_is_gradient_times_difference_per_group():
    model = _linear_suffix_mlp()
    mask = torch.tensor([[0, 0, 1, 2]])
    exact = input_effects(model, X_TAB, mask, baseline=0.5, target=2)
    est = input_effects(model, X_TAB, mask, baseline=0.5, target=2, method="attribution")
    assert est.shape == exact.shape == (7, 3)
    x = X_TAB.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x)[:, 2].sum(), x)
    ref = torch.stack([((X_TAB - 0.5) * grad)[:, :2].sum(1), ((X_TAB - 0.5) * grad)[:, 2], ((X_TAB - 0.5) * grad)[:, 3]], 1)
    torch.testing.assert_close(est, ref, atol=1e-10, rtol=0)
    lin = seeded(nn.Linear(64, 3), 9).double()  # linear model: first order is exact
    x_img = X_IMG.flatten(1)
    torch.testing.assert_close(
        input_effects(lin, x_img, patch_mask((1, 8, 8), 4).flatten(1), method="attribution"),
        input_effects(lin, x_img, patch_mask((1, 8, 8), 4).flatten(1)), atol=1e-10, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "gradient"}, "method"),
        ({"screen": 3, "method": "atp"}, "screen"),
        ({"screen": 0}, "screen"),
        ({"screen": 2.5}, "screen"),
        ({"screen": 3, "method": "attribution"}, "screen"),
    ],
)
def test_argument_checks(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        unit_effects(DigitsCNN(), X_IMG.float(), "conv1", **kwargs)


def test_input_attribution_rejects_token_ids():
    model = tiny_bert()
    ids, mask = token_batch()
    with pytest.raises(TypeError, match="floating point"):
        input_effects(model, ids, baseline=0, method="attribution", additional_forward_args={"attention_mask": mask})
    with pytest.raises(ValueError, match="method"):
        input_effects(model, ids, baseline=0, method="gradient")


def test_first_order_estimates_run_inside_inference_mode():
    # they raised "element 0 of tensors does not require grad" under torch.inference_mode(): the
    # backward pass through the suffix needs autograd, which inference mode switches off
    model = seeded(DigitsCNN(batch_norm=True), 7).double().eval()
    mlp, mask = _linear_suffix_mlp(), torch.tensor([[0, 0, 1, 2]])
    expected = [unit_effects(model, X_IMG, "conv1", method="attribution"), unit_effects(model, X_IMG, "conv1", method="atp"),
                unit_effects(model, X_IMG, "conv1", screen=3), input_effects(mlp, X_TAB, mask, method="attribution")]
    with torch.inference_mode():
        x_img, x_tab = X_IMG.clone(), X_TAB.clone()  # inference tensors
        got = [unit_effects(model, x_img, "conv1", method="attribution"), unit_effects(model, x_img, "conv1", method="atp"),
               unit_effects(model, x_img, "conv1", screen=3), input_effects(mlp, x_tab, mask, method="attribution")]
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    assert all(p.grad is None for p in [*model.parameters(), *mlp.parameters()])
