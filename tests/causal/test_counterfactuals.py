import pytest
import torch
from torch import nn

from lightning_causal.causal.structure.counterfactuals import (
    Counterfactuals,
    CounterfactualSettings,
    counterfactual_explanation,
)
from tests.helpers.models import MLP, seeded


def _linear():
    """z_0 = x_0 + x_1, z_1 = x_2 (bias-free): from x predicted 0, the L2-closest flip moves along
    w_1 - w_0 = (-1, -1, 1) by (z_0 - z_1) / sqrt(3)."""
    lin = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    return lin


def test_linear_counterfactual_is_near_the_analytic_minimum():
    model = _linear()
    x = torch.tensor([[1.0, 0.5, 0.2], [0.4, 0.4, 0.1], [2.0, 0.0, 1.0]])
    cf = counterfactual_explanation(model, x, 1, settings=CounterfactualSettings(l1=0.0, l2=0.01, margin=0.0, steps=150, lr=0.02))
    assert cf.success.all() and (cf.predicted == 1).all()
    analytic = (x[:, :2].sum(1) - x[:, 2]) / 3**0.5
    assert (cf.l2 >= analytic - 1e-4).all()
    assert (cf.l2 <= analytic * 1.15 + 0.03).all()
    torch.testing.assert_close(cf.l2, cf.delta.flatten(1).norm(dim=1))
    torch.testing.assert_close(cf.l1, cf.delta.flatten(1).abs().sum(1))


def test_flips_with_smaller_norm_than_a_scaled_random_direction():
    model = seeded(MLP(32, (32,), 3), 1).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 32, generator=g)
    target = model(x).topk(2, dim=1).indices[:, 1]  # the runner-up class
    cf = counterfactual_explanation(model, x, target, settings=CounterfactualSettings(l1=0.0, l2=0.01, steps=200, lr=0.05))
    assert cf.success.float().mean() == 1.0
    # 4 random unit directions per input, each scaled along a grid until the prediction flips
    # (batched); the best of them still needs a larger step than the counterfactual
    r = torch.randn(4, *x.shape, generator=g)
    r = r / r.norm(dim=2, keepdim=True)
    scales = torch.linspace(0.0, 40.0, 801)
    with torch.no_grad():
        pts = x + scales.view(-1, 1, 1, 1) * r  # [S, 4, N, D]
        flipped = model(pts.reshape(-1, 32)).argmax(1).view(len(scales), 4, -1) == target
    first = torch.where(flipped.any(0), scales[flipped.float().argmax(0)], torch.tensor(float("inf"))).min(0).values
    assert torch.isfinite(first).sum() >= 12  # the comparison is not vacuous
    assert (cf.l2 < first).all()


def test_masked_features_never_change_and_bounds_hold():
    model = seeded(MLP(8, (16,), 3), 2).eval()
    x = torch.rand(16, 8, generator=torch.Generator().manual_seed(3))
    mask = torch.tensor([[1, 0, 1, 0, 1, 0, 1, 1]])
    target = (model(x).argmax(1) + 1) % 3
    cf = counterfactual_explanation(model, x, target, settings=CounterfactualSettings(steps=150, lr=0.05), mask=mask, bounds=(0.0, 1.0))
    frozen = ~mask.bool().expand_as(x)
    assert torch.equal(cf.counterfactuals[frozen], x[frozen])
    assert cf.counterfactuals.min() >= 0.0 and cf.counterfactuals.max() <= 1.0
    assert cf.success.any()
    assert (cf.sparsity <= 5 / 8 + 1e-6).all()
    # an unsuccessful row keeps the input and reports zero distance
    assert torch.equal(cf.counterfactuals[~cf.success], x[~cf.success])
    assert (cf.l2[~cf.success] == 0).all()


def test_l1_gives_sparser_counterfactuals():
    model = seeded(MLP(10, (16,), 3), 4).eval()
    x = torch.randn(16, 10, generator=torch.Generator().manual_seed(5))
    target = model(x).topk(2, dim=1).indices[:, 1]
    dense = counterfactual_explanation(model, x, target, settings=CounterfactualSettings(l1=0.0, steps=150, lr=0.05))
    sparse = counterfactual_explanation(model, x, target, settings=CounterfactualSettings(l1=1.0, steps=150, lr=0.05))
    both = dense.success & sparse.success
    assert both.sum() >= 8
    assert sparse.sparsity[both].mean() < dense.sparsity[both].mean()


def test_leaves_no_trace():
    model = seeded(MLP(4, (8,), 2), 0)
    model.net[1] = nn.Sequential(nn.ReLU(), nn.Dropout(0.5))
    model.train()
    model.net[0].weight.requires_grad_(False)
    model.net[2].weight.grad = torch.ones_like(model.net[2].weight)
    flags = [p.requires_grad for p in model.parameters()]
    rng = torch.get_rng_state()
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    counterfactual_explanation(model, x, 1, settings=CounterfactualSettings(steps=20, init_noise=0.1), generator=torch.Generator().manual_seed(1))
    assert torch.equal(rng, torch.get_rng_state())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert torch.equal(model.net[2].weight.grad, torch.ones_like(model.net[2].weight))
    assert model.net[0].bias.grad is None
    assert model.training and model.net[1][1].training


def test_summary_and_seeded_start_are_deterministic():
    model = seeded(MLP(4, (8,), 3), 0).eval()
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    a = counterfactual_explanation(model, x, 2, settings=CounterfactualSettings(steps=30, init_noise=0.05), generator=torch.Generator().manual_seed(7))
    b = counterfactual_explanation(model, x, 2, settings=CounterfactualSettings(steps=30, init_noise=0.05), generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.counterfactuals, b.counterfactuals)
    s = a.summary()
    assert s["success_rate"] == pytest.approx(float(a.success.float().mean()))
    none = Counterfactuals(x, x, torch.zeros(6), torch.zeros(6, dtype=torch.bool), *(torch.zeros(6),) * 3, torch.zeros(6))
    assert none.summary()["success_rate"] == 0.0 and none.summary()["l2"] != none.summary()["l2"]  # NaN


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"steps": 0}, ValueError, "Expected argument `steps` to be a positive int but got 0"),
        ({"lr": 0.0}, ValueError, "Expected argument `lr`"),
        ({"l1": -1.0}, ValueError, "Expected argument `l1`"),
        ({"l2": -0.1}, ValueError, "Expected argument `l2`"),
        ({"margin": -1.0}, ValueError, "Expected argument `margin`"),
        ({"growth": 1.0}, ValueError, "Expected argument `growth`"),
        ({"bounds": (1.0,)}, ValueError, "Expected argument `bounds`"),
        ({"bounds": (1.0, 0.0)}, ValueError, r"low <= high everywhere but got low 1 > high 0 \(1 of 1 elements\)"),
        ({"bounds": (torch.tensor([0.0, 2.0, 0.0]), 1.0)}, ValueError, r"but got low 2 > high 1 at index \[1\] \(1 of 3 elements\)"),
        ({"bounds": (torch.zeros(3), 1.0)}, ValueError, "broadcastable"),
        ({"mask": torch.ones(1, 3)}, ValueError, "Expected argument `mask`"),
        ({"mask": [1, 0, 1, 0]}, TypeError, "Expected argument `mask`"),
        ({"target_class": 5}, ValueError, r"Expected argument `target_class` to be in \[0, 2\]"),
        ({"target_class": None}, ValueError, "target_class"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    model = MLP(4, (8,), 3)
    fields = {"steps", "lr", "l1", "l2", "margin", "growth"}
    settings = {"steps": 2} | {k: v for k, v in kwargs.items() if k in fields}
    args = {"target_class": 1} | {k: v for k, v in kwargs.items() if k not in fields}
    with pytest.raises(error, match=match):
        counterfactual_explanation(model, torch.randn(2, 4), settings=CounterfactualSettings(**settings), **args)


def test_settings_must_be_counterfactual_settings():
    with pytest.raises(TypeError, match="`settings`"):
        counterfactual_explanation(MLP(4), torch.randn(2, 4), 1, {"steps": 2})


def test_non_classifier_and_bad_inputs():
    with pytest.raises(ValueError, match=r"classifier returning logits \[N, classes >= 2\]"):
        counterfactual_explanation(nn.Linear(4, 1), torch.randn(2, 4), 0, settings=CounterfactualSettings(steps=2))
    with pytest.raises(TypeError, match="floating tensor"):
        counterfactual_explanation(MLP(4), torch.ones(2, 4, dtype=torch.long), 0, settings=CounterfactualSettings(steps=2))


def test_inputs_made_under_inference_mode_work():
    model = seeded(MLP(4, (8,), 3), 0).eval()
    with torch.inference_mode():
        x = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
        target = model(x).topk(2, dim=1).indices[:, 1]
    cf = counterfactual_explanation(model, x, target.clone(), settings=CounterfactualSettings(steps=60, lr=0.05))
    assert cf.success.any()


def test_called_inside_inference_mode_gives_the_same_counterfactuals():
    # the default bounds (±inf) and the mask were made under the caller's inference_mode, and autograd
    # refused to save them for the backward pass ("Inference tensors cannot be saved for backward")
    model = seeded(MLP(4, (8,), 3), 0).eval()
    x = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    settings = CounterfactualSettings(steps=30, lr=0.05)
    outside = counterfactual_explanation(model, x, 2, settings=settings, mask=torch.tensor([1, 1, 1, 0]))
    with torch.inference_mode():
        inside = counterfactual_explanation(model, x, 2, settings=settings, mask=torch.tensor([1, 1, 1, 0]))
    torch.testing.assert_close(inside.counterfactuals, outside.counterfactuals, rtol=0, atol=0)
    assert torch.equal(inside.success, outside.success)
