"""Trial "edge": a model of one scalar input per sample, ``x`` of shape ``[N]``. The layer map
crashed on it (IndexError), and so did InputEffectAudit's finiteness check of its ACE probe
(6baeda2, ``x.flatten(1)``; the audit ran before): both run now, against hand-computed values. The
audits that need a feature dimension (Sobol', counterfactuals, Neural Cleanse) say so."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import (
    BackdoorAudit,
    CounterfactualAudit,
    InputEffectAudit,
    LayerMapAudit,
    Probe,
    SobolAudit,
)
from lightning_causal.causal import layer_causal_map


class Univariate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2 = nn.Linear(1, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.tanh(self.l1(x.unsqueeze(-1))))


def test_input_effects_of_a_scalar_input_per_sample():
    model, x = Univariate().double().eval(), torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    result = InputEffectAudit(target=0).run(model, Probe(x))
    with torch.no_grad():
        expected = (model(x)[:, 0] - model(torch.zeros_like(x))[:, 0]).abs().mean()
    assert abs(result.scalars["mean_abs_effect"] - float(expected)) < 1e-12
    assert "mean_ace_range" in result.scalars


def test_the_layer_map_of_a_scalar_input_per_sample():
    # before: IndexError (x.flatten(1) of the input change and the layers' norms)
    model, x = Univariate().double().eval(), torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    lm = layer_causal_map(model, x, None, layers=["l1", "l2"])
    with torch.no_grad():
        h, h0 = model.l1(x.unsqueeze(-1)), model.l1(torch.zeros(6, 1, dtype=torch.float64))
    expected = float((h - h0).norm(dim=1).mean() / h.norm(dim=1).mean())  # s = E||delta h|| / E||h|| of do(x := 0)
    assert abs(float(lm.response[0]) - expected) < 1e-12
    assert abs(lm.meta["input_response"] - 1.0) < 1e-12  # do(x := 0) moves the input by |x|, its own norm
    assert LayerMapAudit().run(Univariate().eval(), Probe(x.float())).scalars["n_layers"] == 2.0


@pytest.mark.parametrize("audit", [SobolAudit(n=64), CounterfactualAudit(), BackdoorAudit(steps=2)], ids=["sobol", "counterfactual", "backdoor"])
def test_audits_that_need_a_feature_dimension_say_so(audit):
    # before: "argument `data` of shape [N >= 2, ...]" (Sobol: an argument the user never passed), "a floating tensor
    # [N, ...]" (counterfactual: the input is floating), "batch [N, ...] but got torch.Size([6])" (Neural Cleanse)
    x = torch.randn(6, generator=torch.Generator().manual_seed(1))
    with pytest.raises((ValueError, TypeError), match=r"\[N, D, \.\.\.\] \(samples, then features\).*\[6\]"):
        audit.run(Univariate().eval(), Probe(x, torch.zeros(6, dtype=torch.long)))


def test_a_probe_of_one_number_names_the_missing_batch_dimension():
    # before: "Expected argument `inputs` to hold at least one sample but got an empty probe"
    with pytest.raises(ValueError, match=r"batch dimension \[N, \.\.\.\] but got a 0-d tensor"):
        Probe(torch.tensor(1.5))
    assert len(Probe(torch.tensor(1.5).unsqueeze(0))) == 1
