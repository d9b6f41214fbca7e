"""Trial "edge": SobolAudit where the explained probability does not vary: a probe of identical
samples (every drawn input is that sample) or a model whose output ignores its inputs. Every index
is 0 and the user saw "`func` is constant on the sample" (a `func` they never passed, no cause); the
warning and a note now name the probe or the model."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import Probe, SobolAudit


def _model(constant: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).eval()
    if constant:
        with torch.no_grad():
            model[2].weight.zero_()
    return model


def test_identical_samples_are_named():
    x = torch.randn(1, 3, generator=torch.Generator().manual_seed(0)).expand(6, -1)
    with pytest.warns(UserWarning, match=r"the probe's 6 samples are identical") as record:
        result = SobolAudit(n=64).run(_model(), Probe(x))
    assert not any("`func`" in str(w.message) for w in record)
    assert result.vectors["total"].abs().sum() == 0 and "identical" in result.meta["notes"][0]


def test_a_model_that_ignores_its_inputs_is_named():
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    with pytest.warns(UserWarning, match=r"softmax probability is constant over the inputs drawn from the probe"):
        result = SobolAudit(n=64).run(_model(constant=True), Probe(x))
    assert "constant" in result.meta["notes"][0]


def test_a_varying_output_says_nothing():
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*(constant|identical)", category=UserWarning)
        result = SobolAudit(n=64).run(_model(), Probe(x))
    assert "notes" not in result.meta and float(result.vectors["total"].sum()) > 0
