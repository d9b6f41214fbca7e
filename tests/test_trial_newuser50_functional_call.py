"""newuser50 trial: a model run with torch.func.functional_call on weights passed in as a forward argument
(``forward(x, params)``, ``params`` a dict of ``[16, 4]``, ``[16]``, ``[3, 16]``, ``[3]`` tensors, 24 probe samples).
The causal estimators gather by row only the tensors whose first dimension is the samples', so they ran; Captum's
methods (``attribute``, ``CaptumBaseline``) stopped with torch's bare 'mat1 and mat2 shapes cannot be multiplied':
Captum expands every tensor of ``additional_forward_args`` with the inputs, weights too. CaptumForward now passes a
tensor whose first dimension is not the samples' whole to every call, as it does a shared ``position_ids``."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.func import functional_call

from lightning_causal import CaptumBaseline, audit_model
from lightning_causal.audits import Probe
from lightning_causal.baselines import attribute


class _Runner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return functional_call(self.net, params, (x,))


def _setup() -> tuple[_Runner, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = _Runner().double().eval()
    params = {k: 1.5 * v.detach().clone() for k, v in model.net.named_parameters()}  # the weights passed in
    x = torch.randn(24, 4, dtype=torch.float64)
    with torch.no_grad():
        target = model(x, params).argmax(1)
    return model, params, x, target


class _Held(nn.Module):  # the reference: the same weights held by the model, no forward argument
    def __init__(self, runner: _Runner, params: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.runner, self.params = runner, params

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.runner(x, self.params)


@pytest.mark.parametrize("method", ["IntegratedGradients", "FeatureAblation", "InputXGradient"])
def test_captums_methods_take_weights_passed_as_a_forward_argument(method: str) -> None:
    model, params, x, target = _setup()
    got = attribute(model, x, method, target=target, additional_forward_args=(params,))
    want = attribute(_Held(model, params), x, method, target=target)
    assert torch.allclose(got, want, atol=1e-12)


def test_the_captum_baseline_audits_such_a_model_and_leaves_the_weights_passed_in() -> None:
    model, params, x, target = _setup()
    kept = {k: v.clone() for k, v in params.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (result,) = audit_model(model, [CaptumBaseline()], Probe(x, target, additional_forward_args=(params,)), probe_size=24)
    assert 0.0 <= result.scalars["deletion_auc"] <= 1.0
    assert all(torch.equal(kept[k], params[k]) for k in params)
