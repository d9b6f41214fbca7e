import warnings

import pytest
import torch
from captum.attr import FeatureAblation, LayerFeatureAblation
from torch import nn

from lightning_causal.causal import (
    SetTo,
    Zero,
    average_causal_effect,
    input_effects,
    interventional_expectations,
    patch_mask,
    unit_effects,
)
from lightning_causal.causal.engine.batching import rows_alone
from lightning_causal.causal.engine.suffix import suffix_module
from tests.helpers.models import (
    MLP,
    DigitsCNN,
    ResidualCNN,
    TupleModel,
    all_hook_counts,
    hand_linear,
    seeded,
)

G = torch.Generator().manual_seed(0)
X_IMG = torch.rand(9, 1, 8, 8, generator=G)
X_TAB = torch.randn(11, 6, generator=G)


def _captum_groups(model, x, mask, baseline, target):
    attr = FeatureAblation(model).attribute(x, baselines=baseline, target=target, feature_mask=mask)
    return attr


def _gather(attr_map, mask, g):
    """Group values out of a Captum per-element map (every element of a group carries the group value)."""
    n = attr_map.shape[0]
    m = mask.expand_as(attr_map).reshape(n, -1)
    flat = attr_map.reshape(n, -1)
    return torch.stack([flat[i][m[i] == k][0] if (m[i] == k).any() else flat.new_tensor(0.0) for i in range(n) for k in range(g)]).view(n, g)


@pytest.mark.parametrize("target", [None, 3, "per_sample"])
@pytest.mark.parametrize("baseline", [0.0, 0.5, "tensor"])
def test_input_effects_equal_captum_on_cnn(target, baseline):
    # float64 so that the comparison tests the algorithm, not float32 summation order
    model = seeded(DigitsCNN(), 1).double().eval()
    x = X_IMG.double()
    mask = patch_mask((1, 8, 8), 2)
    if target == "per_sample":
        target = torch.arange(9) % 10
    if baseline == "tensor":
        baseline = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    ours = input_effects(model, x, mask, baseline=baseline, target=target)
    captum_target = target if target is not None else model(x).argmax(1)
    ref = _gather(_captum_groups(model, x, mask, baseline, captum_target), mask, 16)
    assert ours.shape == (9, 16)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_input_effects_equal_captum_on_mlp_per_column(device):
    model = seeded(MLP(6, (8,), 3), 2).eval().to(device)
    mask = torch.arange(6, device=device).view(1, 6)
    x, base = X_TAB.to(device), torch.full((6,), 0.25, device=device)
    ours = input_effects(model, x, mask, baseline=base, target=1)
    assert ours.device.type == device.type
    ref = _captum_groups(model, x, mask, base, 1)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_input_effects_equal_captum_on_tuple_inputs():
    model = seeded(TupleModel(), 3).eval()
    img, vec = torch.rand(5, 1, 4, 4, generator=G), torch.randn(5, 3, generator=G)
    m_img = patch_mask((1, 4, 4), 2)  # groups 0..3
    m_vec = torch.tensor([[4, 5, 5]])  # groups 4, 5
    ours = input_effects(model, (img, vec), (m_img, m_vec), baseline=(0.0, 1.0), target=2)
    a_img, a_vec = FeatureAblation(model).attribute((img, vec), baselines=(0.0, 1.0), target=2, feature_mask=(m_img, m_vec))
    torch.testing.assert_close(ours[:, :4], _gather(a_img, m_img, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(ours[:, 4:], a_vec[:, [0, 1]], atol=1e-5, rtol=0)


def test_input_effects_literal_values():
    model = hand_linear([1.0, 2.0, -3.0], bias=0.5)
    x = torch.tensor([[1.0, 1.0, 1.0], [2.0, 0.0, -1.0]])
    out = input_effects(model, x, torch.tensor([[0, 1, 1]]), baseline=0.0)
    # delta_g = w_g . (x_g - b)
    assert torch.equal(out, torch.tensor([[1.0, -1.0], [2.0, 3.0]]))


def test_per_sample_feature_mask():
    model = hand_linear([1.0, 10.0])
    x = torch.ones(2, 2)
    mask = torch.tensor([[0, 1], [1, 0]])  # groups swap between samples
    assert torch.equal(input_effects(model, x, mask), torch.tensor([[1.0, 10.0], [10.0, 1.0]]))


def test_a_feature_mask_without_the_batch_dimension_is_broadcast_as_numpy_does():
    # Captum's convention, "broadcastable to the input": [C, L] and [L] for inputs [N, C, L] (they were refused)
    model = nn.Sequential(nn.Conv1d(2, 3, 3), nn.Flatten(), nn.Linear(18, 2)).double().eval()
    x = torch.randn(4, 2, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    windows = torch.arange(8) // 2
    full = input_effects(model, x, windows.expand(1, 2, 8))
    assert torch.equal(input_effects(model, x, windows.repeat(2, 1)), full)
    assert torch.equal(input_effects(model, x, windows), full)
    assert full.shape == (4, 4)


@pytest.mark.parametrize("mbs", [1, 7, 100_000])
def test_batch_size_invariance(mbs):
    # float64: chunking must change nothing but float32 kernel-dependent rounding
    model, x = seeded(DigitsCNN(), 4).double(), X_IMG.double()
    mask = patch_mask((1, 8, 8), 4)
    ref = input_effects(model, x, mask)
    torch.testing.assert_close(input_effects(model, x, mask, max_batch_size=mbs), ref, atol=1e-10, rtol=0)
    uref = unit_effects(model, x, "conv2")
    torch.testing.assert_close(unit_effects(model, x, "conv2", max_batch_size=mbs), uref, atol=1e-10, rtol=0)


def test_ace_of_linear_model_is_analytic():
    w = [2.0, -1.0, 0.5]
    model = hand_linear(w, bias=3.0)
    values = torch.tensor([-1.0, 0.0, 2.0, 5.0])
    ace = average_causal_effect(model, X_TAB[:, :3], torch.tensor([[0, 1, 2]]), values)
    expected = torch.tensor(w).view(3, 1) * (values - values.mean()).view(1, 4)
    torch.testing.assert_close(ace, expected, atol=1e-5, rtol=0)


def test_interventional_expectation_and_quantile_grid():
    model = hand_linear([1.0, 0.0])
    x = torch.stack([torch.linspace(0, 1, 101), torch.zeros(101)], 1)
    mu, grid = interventional_expectations(model, x, torch.tensor([[0, 1]]), "quantiles", num_values=3)
    torch.testing.assert_close(grid[0], torch.tensor([0.05, 0.5, 0.95]))
    # mu_0(a) = a + E[w1 x1] = a
    torch.testing.assert_close(mu[0], grid[0])
    torch.testing.assert_close(mu[1], torch.full((3,), 0.5))


def test_interventional_expectations_of_per_sample_groups_average_the_samples_that_have_the_group():
    """Per-sample groups without padding: group 2 exists in sample 2 only, so mu_2(a) is f(x_2 | do(x_g := a))
    (it was averaged with the three samples it leaves unchanged: [2.5, 3.375] for [0, 3.5])."""
    model = hand_linear([1.0, -2.0, 0.5, 3.0])
    x = torch.tensor([[1.0, 2.0, -1.0, 0.5], [0.5, -1.0, 2.0, 1.0], [2.0, 1.0, 1.0, -1.0], [0.0, 1.0, 3.0, 2.0]])
    mask = torch.tensor([[0, 0, 0, 1], [0, 1, 1, 1], [0, 1, 2, 2], [0, 0, 1, 1]])
    mu, _ = interventional_expectations(model, x, mask, torch.tensor([0.0, 1.0]), target=0)
    want = torch.zeros(3, 2)  # brute force: mean over the samples that have g of f(x | do(x_g := a))
    for g in range(3):
        have = [n for n in range(4) if (mask[n] == g).any()]
        for k, a in enumerate((0.0, 1.0)):
            z = x[have].clone()
            z[mask[have] == g] = a
            want[g, k] = model(z)[:, 0].mean()
    assert want[2].tolist() == [0.0, 3.5]
    torch.testing.assert_close(mu, want, atol=1e-6, rtol=0)


def test_unit_effects_equal_captum_layer_feature_ablation(device):
    model = seeded(DigitsCNN(), 5).double().eval().to(device)
    x = X_IMG.double().to(device)
    target = model(x).argmax(1)
    ours = unit_effects(model, x, "conv2")
    layer_mask = torch.arange(32, device=device).view(1, 32, 1, 1)
    ref = LayerFeatureAblation(model, model.conv2).attribute(x, target=target, layer_mask=layer_mask)
    torch.testing.assert_close(ours, ref[:, :, 0, 0], atol=1e-5, rtol=0)


def _relu_pair() -> nn.Sequential:
    """``y = 3 relu(x_0) - relu(x_1)``: identity into two ReLU units read out by ``(3, -1)``."""
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[3.0, -1.0]]))
        model[2].bias.zero_()
    return model


def test_unit_effects_literals():
    model = _relu_pair()
    x = torch.tensor([[1.0, 2.0], [0.5, -1.0]])
    assert torch.equal(unit_effects(model, x, "1"), torch.tensor([[3.0, -2.0], [1.5, 0.0]]))
    # do(h := 4) for unit 1 only
    assert torch.equal(unit_effects(model, x, "1", SetTo(4.0, units=1)), torch.tensor([[2.0], [4.0]]))


def test_do_grid_is_range_of_interventional_curve():
    model = _relu_pair()
    grid = [SetTo(v) for v in (0.0, 1.0, 2.5)]
    out = unit_effects(model, torch.tensor([[1.0, 2.0]]), "1", grid)
    torch.testing.assert_close(out, torch.tensor([[3.0 * 2.5, 1.0 * 2.5]]))


@pytest.mark.parametrize("layer", ["conv1", "relu2", "fc1"])
def test_suffix_path_equals_fallback(layer):
    model = seeded(DigitsCNN(batch_norm=True, dropout=0.3), 6).double().train()
    x = X_IMG.double()
    assert suffix_module(model, layer) is not None
    a = unit_effects(model, x, layer, target=2)
    b = unit_effects(model, x, layer, target=2, use_suffix=False)
    torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
    # and in float32 to float32 precision
    m32 = seeded(DigitsCNN(batch_norm=True, dropout=0.3), 6)
    torch.testing.assert_close(unit_effects(m32, X_IMG, layer), unit_effects(m32, X_IMG, layer, use_suffix=False), atol=1e-4, rtol=1e-5)
    assert model.training and model.bn1.training  # modes restored


def test_residual_model_uses_fallback_with_same_numbers():
    model = seeded(ResidualCNN(), 7)
    assert suffix_module(model, "conv2") is None  # skip connection crosses conv2
    assert suffix_module(model, "conv1") is not None
    eff = unit_effects(model, X_IMG, "conv2")
    # reference: one full forward per unit with the intervention context manager
    from lightning_causal.causal import intervene

    with torch.no_grad():
        out = model(X_IMG)
        t = out.argmax(1)
        cols = []
        for u in range(8):
            with intervene(model, {"conv2": Zero(units=u)}):
                cols.append(out.gather(1, t[:, None])[:, 0] - model(X_IMG).gather(1, t[:, None])[:, 0])
    torch.testing.assert_close(eff, torch.stack(cols, 1), atol=1e-6, rtol=0)


def test_no_trace_left():
    model = seeded(DigitsCNN(batch_norm=True), 8).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(X_IMG).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    stats = [b.clone() for b in model.buffers()]
    rng = torch.get_rng_state()
    input_effects(model, X_IMG, patch_mask((1, 8, 8), 4))
    unit_effects(model, X_IMG, "conv1")
    average_causal_effect(model, X_IMG, patch_mask((1, 8, 8), 4))
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(stats, model.buffers()))
    assert torch.equal(rng, torch.get_rng_state())
    assert model.training and all(m.training for m in model.modules())
    assert all_hook_counts(model) == 0
    del opt


def test_hooks_removed_after_forward_error_in_fallback():
    model = seeded(ResidualCNN(), 9)
    with pytest.raises(ValueError, match="units"):
        unit_effects(model, X_IMG, "conv2", Zero(units=[50]))
    assert all_hook_counts(model) == 0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m: input_effects(m, X_IMG, torch.zeros(1, 1, 8, 8)), "integer group ids"),
        (lambda m: input_effects(m, X_IMG, torch.zeros(1, 1, 4, 4, dtype=torch.long)), "broadcastable"),
        (lambda m: input_effects(m, X_IMG, torch.full((1, 1, 8, 8), -1)), "non-negative"),
        (lambda m: input_effects(m, X_IMG, patch_mask((1, 8, 8), 4), target=10), r"\[0, 9\] but got \[10\] \("),  # once, not per sample
        (lambda m: input_effects(m, X_IMG, patch_mask((1, 8, 8), 4), target=1.5), "target"),
        (lambda m: input_effects(m, X_IMG, patch_mask((1, 8, 8), 4), max_batch_size=0), "max_batch_size"),
        (lambda m: input_effects(m, X_IMG, patch_mask((1, 8, 8), 4), baseline=float("nan")), "finite"),
        (lambda m: input_effects(m, X_IMG, patch_mask((1, 8, 8), 4), baseline=torch.zeros(3, 3)), "baseline"),
        # 3 channels for a 1-channel input broadcast, growing the input (a conv error, or other inputs' effects)
        (lambda m: input_effects(m, X_IMG, patch_mask((1, 8, 8), 4), baseline=torch.zeros(3, 8, 8)), "without growing it"),
        (lambda m: input_effects(m, X_IMG[:0], patch_mask((1, 8, 8), 4)), "at least one sample"),
        (lambda m: input_effects(m, "x", patch_mask((1, 8, 8), 4)), "tensor or a tuple"),
        (lambda m: average_causal_effect(m, X_IMG, patch_mask((1, 8, 8), 4), "median"), "quantiles"),
        (lambda m: average_causal_effect(m, X_IMG, patch_mask((1, 8, 8), 4), torch.zeros(3, 2)), r"\[K\]"),
        (lambda m: unit_effects(m, X_IMG, "conv3"), "close matches"),
        (lambda m: unit_effects(m, X_IMG, "conv1", Zero(units=[16])), "units"),
        (lambda m: unit_effects(m, X_IMG, "conv1", []), "Intervention"),
        (lambda m: unit_effects(m, X_IMG, "conv1", [SetTo(0.0, units=1), SetTo(1.0)]), "same `units`"),
    ],
)
def test_argument_checks(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(DigitsCNN())


def test_non_classifier_output_rejected():
    class Bad(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="model output"):
        input_effects(Bad(), X_IMG, patch_mask((1, 8, 8), 4))


def test_noop_interventions_are_skipped_but_reported_as_zero():
    model = hand_linear([1.0, 2.0, 3.0])
    rows = []
    # the stacked-rows check's rows run alone besides their chunk are not counted
    model.register_forward_pre_hook(lambda m, inp: None if rows_alone() else rows.append(inp[0].shape[0]))
    x = torch.tensor([[0.0, 1.0, 1.0], [2.0, 0.0, 0.0]])  # group 0 is already 0 in sample 0, group 1 in sample 1
    out = input_effects(model, x, torch.tensor([[0, 1, 1]]), max_batch_size=100)
    assert torch.equal(out, torch.tensor([[0.0, 5.0], [2.0, 0.0]]))
    # with max_batch_size given there is no trial pass: the clean forward (2 rows), in which no global
    # generator moves (so no detection pass: the passes comparing outputs run only for a model that
    # draws), the check that samples 0 and 1 run alone give their outputs in the batch (2 rows:
    # linked_samples.check_rows_independent), then one pass over the 2 rows (of 4) whose intervention
    # changes the input
    assert rows == [2, 2, 2]


def test_ace_warns_when_a_group_is_constant_over_the_probe():
    """A feature constant over `inputs` gets equal quantile values: its ACE curve is flat whatever the
    model does with it (here weight 5, the largest). That zero used to come without a word."""
    model = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 5.0, -2.0]]))
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    x[:, 1] = 0.7
    with pytest.warns(UserWarning, match=r"Group\(s\) 1 \(= 0.7\) take one value over `inputs`") as got:
        ace = average_causal_effect(model, x)
    assert len(got) == 1
    assert float(ace[1].abs().max()) < 1e-6 and float(ace[0].abs().max()) > 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        average_causal_effect(model, x, values=torch.tensor([0.0, 1.0]))  # values given: nothing to say
        average_causal_effect(model, torch.randn(20, 3))  # every feature varies

