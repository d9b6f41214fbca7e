"""Leftovers of session 38's final reads. (1) The clean probe's batch-independence check
(`sample_independence.check_samples_independent`) refused past 1% of the output's scale and let everything below
through in silence: a solver stopping on its batch's residual whose two probe samples alone differed from the batch by
0.1-0.6% of the scale (each sample up to 8% off its own in the batch) ran `counterfactual_fairness_gap`, the
counterfactual and backdoor audits without a word, the band 057f3431 closed for stacked rows. It now warns there, by the
same rule (`rounding.rounding_bound`) and once per block with the stacked rows' warning. (2) `model_precision` took the
coarsest parameter dtype, so one bfloat16 scale of 8 elements in a float32 model raised the bound to bfloat16's
(above the refusal's 1%) and silenced the warning for the whole model; it now takes the dtype holding most elements."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import AttributeFlip, counterfactual_fairness_gap, input_effects
from lightning_causal.causal.engine.batching import remembered_fit
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.rounding import ROUNDING, model_precision, rounding_bound
from lightning_causal.causal.engine.sample_independence import check_samples_independent


class _BatchResidual(nn.Module):
    """z <- a z + (1 - a) t per row, a = sigmoid(3 x_1 + 2), iterated until the BATCH's residual is ``tol`` of the
    iterate (the implicit-layers tutorial's stopping rule), then one step with gradients. ``scale``: a parameter of
    ``scale_dtype`` multiplying the output (cast to the output's dtype where read: a LayerNorm scale kept in bfloat16)."""

    def __init__(self, tol: float, scale_dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.rate, self.target, self.tol = nn.Linear(4, 1), nn.Linear(4, 8), tol
        with torch.no_grad():
            self.rate.weight.copy_(torch.tensor([[0.0, 3.0, 0.0, 0.0]]))
            self.rate.bias.fill_(2.0)
            self.target.weight.copy_(torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]]).repeat(4, 1))
            self.target.bias.fill_(0.5)
        self.scale = nn.Parameter(torch.ones(8, dtype=scale_dtype)) if scale_dtype is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, t = torch.sigmoid(self.rate(x)), self.target(x)
        with torch.no_grad():
            z = torch.zeros_like(t)
            for _ in range(2000):
                new = a * z + (1 - a) * t
                stop = bool((new - z).norm() < self.tol * new.norm())
                z = new
                if stop:
                    break
        out = a * z + (1 - a) * t
        return out * self.scale.to(out.dtype) if self.scale is not None else out


def _probe() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    x[:, 1] = 1 + 0.05 * torch.randn(64, generator=g)  # rates close together: samples 0 and 1 within the refusal's 1%
    x[:, 3] = (x[:, 3] > 0).float()
    return x


def _check(model: nn.Module, x: torch.Tensor) -> list[str]:
    forward = Forward(model)
    with torch.no_grad():
        out = forward(x)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        check_samples_independent(forward, (x,), out, "The estimator")
    return [str(w.message) for w in seen if "float rounding" in str(w.message)]


def test_clean_probe_samples_off_their_batch_within_the_refusals_percent_are_warned_of() -> None:
    x = _probe()
    model = _BatchResidual(tol=1e-3).eval()
    with torch.no_grad():  # what the warning is for: the batch's outputs are not each sample's own
        off = float(((model(x) - torch.cat([model(r[None]) for r in x])).abs().amax(1)).max())
    assert off > 0.01
    (message,) = _check(model, x)
    assert "to float rounding, but the outputs of probe samples [0, 1] run alone differ from their outputs in the batch of 64" in message
    assert "the refusal takes 1%" in message and "solver loop stopping on the batch's residual" in message
    assert "The estimator runs rows of many samples in one batch" in message and "make the forward per-sample" in message
    assert _check(_BatchResidual(tol=1e-7).eval(), x) == []  # solved to rounding: silent


def test_a_public_estimator_on_the_clean_probe_warns_once() -> None:
    x = _probe()
    with pytest.warns(UserWarning, match="A counterfactual fairness gap runs rows of many samples") as seen:
        counterfactual_fairness_gap(_BatchResidual(tol=1e-3).eval(), x, AttributeFlip(3), sensitive=3)
    assert len([w for w in seen if "float rounding" in str(w.message)]) == 1


def test_one_warning_per_block_for_the_clean_probe_and_the_stacked_rows() -> None:
    x = _probe()
    with warnings.catch_warnings(record=True) as seen, remembered_fit():
        warnings.simplefilter("always")
        input_effects(_BatchResidual(tol=1e-3).eval(), x, target=0)
    assert len([w for w in seen if "float rounding" in str(w.message)]) == 1


def test_ordinary_models_stay_silent_on_the_clean_probe() -> None:
    torch.manual_seed(4)
    mlp = nn.Sequential(nn.Linear(30, 128), nn.BatchNorm1d(128), nn.Tanh(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 4))
    mlp[1].running_mean.normal_(0, 0.5)
    cnn = nn.Sequential(nn.Conv2d(2, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(12, 3))
    for model, x in ((mlp.eval(), torch.randn(300, 30)), (cnn.eval(), torch.randn(40, 2, 9, 9))):
        assert _check(model, x) == []


def test_one_bfloat16_scale_in_a_float32_model_leaves_the_bound_float32s() -> None:
    x = _probe()
    mixed = _BatchResidual(tol=1e-3, scale_dtype=torch.bfloat16).eval()
    assert model_precision(mixed)[0] == torch.finfo(torch.float32).eps  # 8 bfloat16 elements of 55
    assert rounding_bound(torch.ones(2), mixed) == ROUNDING
    assert len(_check(mixed, x)) == 1  # the bound of bfloat16 (above 1%) silenced it
    with pytest.warns(UserWarning, match="Intervening on the inputs runs rows of many samples in one batch, so its results"):
        input_effects(mixed, x, target=0)


def test_a_bfloat16_model_takes_bfloat16s_bound_also_where_it_returns_float32() -> None:
    class Upcast(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Linear(4, 3).to(torch.bfloat16)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x.to(torch.bfloat16)).float()

    for model in (nn.Linear(4, 3).to(torch.bfloat16), Upcast()):
        assert model_precision(model)[0] == torch.finfo(torch.bfloat16).eps
        assert rounding_bound(torch.ones(2), model) >= 1e-2  # at the refusal's 1%: never warned of
    half_scale = nn.Linear(4, 3)
    half_scale.bias.data = half_scale.bias.data.half()  # 3 float16 elements of 15: the weights' float32
    assert model_precision(half_scale)[0] == torch.finfo(torch.float32).eps
    buffers_only = nn.Module()
    buffers_only.register_buffer("w", torch.ones(4, 3, dtype=torch.float16))  # no parameter: the buffers say
    assert model_precision(buffers_only)[0] == torch.finfo(torch.float16).eps
