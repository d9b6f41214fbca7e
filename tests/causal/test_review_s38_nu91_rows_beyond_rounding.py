"""Review of 87eda424 (newuser91's deep-equilibrium trial): a fixed-point solver that stops once the batch's residual
is below its tolerance moves each row's output with its batch-mates by less than the stacked-rows check's 1%, so
`input_effects` in one big pass ran in silence with effects off each sample's own (a DEQ under Anderson at tolerance
1e-2: up to 0.048, where the features the labels do not read have mean effects of 0.09-0.13), while
`max_batch_size=64` was refused. The check now warns where its rows alone differ from their pass beyond float rounding
(`stacked_rows.ROUNDING`, on each row's scale) but within the refusal's 1%, naming the difference on that scale and
against the spread of the pass's values; ordinary models (BatchNorm in eval, float32 kernels of big and small passes)
stay silent, and half precision, whose rounding reaches the 1%, is never warned of."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, unit_effects
from tests.causal.test_trial_newuser91_batch_residual_solver import _Relaxation


def _BatchResidual(tol: float) -> nn.Module:
    """z <- a z + (1 - a) t per row, a = sigmoid(3 x_1 + 2), iterated under no_grad until the batch's residual is
    ``tol`` of the iterate (the implicit-layers tutorial's stopping rule), then the one-step call."""
    return _Relaxation(per_row=False, tol=tol, steps=2000)


_X = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
_X[:, 1] = 1.0  # one rate for every clean row, alike alone and together; the baseline x_1 = 0 mixes two in a pass


def _alone(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.stack([torch.stack([model(r[None])[0, 0] - model(r[None] * (torch.arange(4) != g))[0, 0]
                                         for g in range(4)]) for r in x])


def test_a_batch_residual_solver_within_the_refusals_percent_is_warned_of_with_its_size() -> None:
    model = _BatchResidual(tol=3e-4).eval()  # 1e-3 and above: refused (more than 1%)
    with pytest.warns(UserWarning, match=r"stacks in one pass to give what they give alone to float rounding, but in a "
                                         r"pass of 256 rows .* max \|difference\| [0-9.e-]+, [0-9.e-]+% of the row's "
                                         r"scale .* the pass's values spread over [0-9.]+ .* how many rows each pass "
                                         r"stacks \(`max_batch_size`, Captum's `internal_batch_size`\).* a solver loop "
                                         r"that stops once the batch's residual is below its tolerance") as seen:
        got = input_effects(model, _X, target=0)
    assert len([w for w in seen if "float rounding" in str(w.message)]) == 1  # once, for the whole run
    off = float((got - _alone(model, _X)).abs().max())
    assert 1e-4 < off < 0.05  # what the warning is for: effects off each sample's own, below the refusal
    fixed = _BatchResidual(tol=1e-7).eval()  # solved to rounding: silent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        input_effects(fixed, _X, target=0)


def _bn_cnn() -> nn.Module:
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(2, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(), nn.Conv2d(12, 8, 3), nn.BatchNorm2d(8),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.normal_(0, 0.5), m.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("max_batch_size", [None, 5])
def test_ordinary_models_are_not_warned_of(max_batch_size: int | None) -> None:
    torch.manual_seed(4)
    mlp = nn.Sequential(nn.Linear(30, 128), nn.BatchNorm1d(128), nn.Tanh(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 4))
    mlp[1].running_mean.normal_(0, 0.5)
    x_img, x_vec = torch.randn(12, 2, 9, 9), torch.randn(40, 30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        input_effects(_bn_cnn(), x_img, max_batch_size=max_batch_size)
        unit_effects(_bn_cnn(), x_img, "3", max_batch_size=max_batch_size)
        input_effects(mlp.eval(), x_vec, max_batch_size=max_batch_size)
        unit_effects(mlp.eval(), x_vec, "2", max_batch_size=max_batch_size)


def test_rounding_bound_follows_the_precision() -> None:
    from lightning_causal.causal.engine.rounding import ROUNDING, rounding_bound

    assert rounding_bound(torch.ones(2)) == ROUNDING == rounding_bound(torch.ones(2, dtype=torch.float64))
    assert rounding_bound(torch.ones(2, dtype=torch.float16)) >= 1e-2  # at the refusal's 1%: never warned of
    assert rounding_bound(torch.ones(2, dtype=torch.bfloat16)) >= 1e-2
    assert rounding_bound(torch.ones(2, dtype=torch.int64)) == ROUNDING
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")  # TF32 matmuls
        assert rounding_bound(torch.ones(2)) == pytest.approx(512 * 2.0 ** -10)
    finally:
        torch.set_float32_matmul_precision(before)


class _HalfBodyFloatLogits(nn.Module):
    """A float16 body whose logits are returned in float32 (``.float()`` at the end of forward, as HF models do)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(64, 512), nn.GELU(), nn.Linear(512, 512), nn.GELU(), nn.Linear(512, 10))
        with torch.no_grad():
            self.body[-1].weight.mul_(30)  # logits of a few units, as a trained classifier's
        self.body.half().eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.half()).float()


def test_float32_logits_of_a_half_precision_body_are_not_warned() -> None:
    """Final read of 057f3431: the bound was taken from the values' dtype only, so float32 logits of a float16 body
    (one float16 ulp: ~6e-4 of the scale) were warned of as a solver stopping on its batch's residual."""
    model, x = _HalfBodyFloatLogits(), torch.randn(24, 64, generator=torch.Generator().manual_seed(1))
    mask = (torch.arange(64) // 8)[None]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        input_effects(model, x, target=0, feature_mask=mask, max_batch_size=7)
        input_effects(model, x, target=0, feature_mask=mask)
        unit_effects(model, x, "body.1", target=0, max_batch_size=7)
