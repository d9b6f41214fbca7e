"""A forecaster of several horizons audited with ``target=None``: each audit explains the predicted
class, the largest output, which for a regression mixes horizons across samples. The audits warn when
the probe's labels are real-valued and the model has several outputs, and ``target=h`` explains
horizon ``h`` exactly (hand-weighted model: horizon 0 reads feature 0 at step 3, horizon 1 feature 1
at step 5)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import (
    CaptumBaseline,
    CausalGraphAudit,
    InputEffectAudit,
    LayerMapAudit,
    SobolAudit,
    UnitImportanceAudit,
)
from lightning_causal.audits.base import Probe
from lightning_causal.audits.options import regression_labels

T, F = 6, 2


def _forecaster() -> nn.Module:
    """``[N, T, F] -> [N, 2]``: horizon 0 = 3 x[:, 3, 0], horizon 1 = -2 x[:, 5, 1] (through a hidden layer)."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(T * F, 2, bias=False), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[0, 3 * F + 0] = 1.0
        model[1].weight[1, 5 * F + 1] = 1.0
        model[2].weight.copy_(torch.tensor([[3.0, 0.0], [0.0, -2.0]]))
    return model.double().eval()


def _probe(labels: torch.Tensor | None = None) -> Probe:
    x = torch.randn(16, T, F, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    if labels is None:
        labels = _forecaster()(x).detach() + 0.1  # real-valued targets of both horizons
    return Probe(x, labels)


PER_FEATURE = torch.arange(F).reshape(1, 1, F).expand(1, T, F).contiguous()
AUDITS = {
    "input_effect": lambda target: InputEffectAudit(target=target, ace_values=None),
    "unit_importance": lambda target: UnitImportanceAudit(["1"], target=target),
    "captum": lambda target: CaptumBaseline(("Saliency",), feature_mask=PER_FEATURE, target=target),
    "causal_graph": lambda target: CausalGraphAudit(["1"], target=target, stability_resamples=0),
    "layer_map": lambda target: LayerMapAudit(feature_mask=PER_FEATURE, target=target),
    "sobol": lambda target: SobolAudit(n=64, feature_mask=PER_FEATURE, probability=False, n_bootstrap=0, target=target),
}


def _messages(audit, probe: Probe) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.run(_forecaster(), probe)
    return [str(w.message) for w in caught if "`target=None`" in str(w.message)]


@pytest.mark.parametrize("kind", sorted(AUDITS))
def test_target_none_on_a_multi_horizon_regression_warns(kind: str) -> None:
    messages = _messages(AUDITS[kind](None), _probe())
    assert len(messages) == 1, messages
    assert "2 outputs" in messages[0] and "real-valued [N, 2]" in messages[0] and "`target=k`" in messages[0]


@pytest.mark.parametrize("kind", sorted(AUDITS))
def test_a_chosen_horizon_or_class_labels_say_nothing(kind: str) -> None:
    assert _messages(AUDITS[kind](1), _probe()) == []
    assert _messages(AUDITS[kind](None), _probe(torch.tensor([0, 1] * 8))) == []  # a classifier's labels


def test_target_selects_the_horizon_exactly() -> None:
    probe = _probe()
    x = probe.first
    for h, (step, feature, weight) in enumerate([(3, 0, 3.0), (5, 1, -2.0)]):
        result = InputEffectAudit(target=h, ace_values=None).run(_forecaster(), probe)
        expected = torch.zeros(16, T, F, dtype=torch.float64)
        expected[:, step, feature] = weight * x[:, step, feature]  # f_h(x) - f_h(x | do(x_(step, feature) := 0))
        torch.testing.assert_close(result.maps["effect"].double(), expected)
        assert result.meta["targets"] == [h] * 16
    # target=None mixes them: each sample explained at its larger horizon
    mixed = InputEffectAudit(ace_values=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        targets = mixed.run(_forecaster(), probe).meta["targets"]
    assert targets == _forecaster()(x).argmax(1).tolist() and len(set(targets)) == 2


def test_regression_labels() -> None:
    assert regression_labels(torch.tensor([[0.5, -1.5], [2.25, 0.0]]))
    assert regression_labels(torch.tensor([0.5, 1.5]))
    assert not regression_labels(torch.tensor([[0.0, 1.0], [1.0, 1.0]]))  # multi-hot
    assert not regression_labels(torch.tensor([[0.25, 0.75], [0.5, 0.5]]))  # soft labels
    assert not regression_labels(torch.tensor([2.0, 0.0, 1.0]))  # class indices stored as floats
    assert not regression_labels(torch.tensor([2, 0, 1]))
    assert not regression_labels(None)


def test_one_output_says_nothing() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(T * F, 1)).double().eval()
    probe = _probe(torch.linspace(-2.5, 3.5, 16, dtype=torch.float64).unsqueeze(1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        InputEffectAudit(ace_values=None).run(model, probe)
        UnitImportanceAudit(["1"]).run(model, probe)
    assert not [w for w in caught if "`target=None`" in str(w.message)]
