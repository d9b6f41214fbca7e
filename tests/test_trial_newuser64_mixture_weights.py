"""newuser64 trial: a regression whose head gives mixture weights through a softmax (``[N, 3]``, each row summing to 1:
weights of three fixed levels, no class probabilities). ``CaptumBaseline`` refused it at set-up for its perturbation
curves' softmax, advising ``output=lambda out: out.log()`` (which explains log-weights) and saying only "score='raw'
reads the output as it is", not where that goes. The refusal now names ``settings=CompareSettings(score='raw')``, with
which the curves read the weights themselves."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, CompareSettings, Probe


class _Weights(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 3)
        with torch.no_grad():
            self.net.weight.copy_(torch.arange(12.0).view(3, 4) / 12 - 0.5)
            self.net.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), 1)  # mixture weights


def _probe() -> Probe:
    return Probe(torch.randn(8, 4, generator=torch.Generator().manual_seed(0)))


def test_the_refusal_names_where_score_raw_goes() -> None:
    audit = CaptumBaseline(("IntegratedGradients",), target=2)
    with pytest.raises(ValueError, match=r"settings=CompareSettings\(score='raw'\)"):
        audit.run(_Weights().eval(), _probe())


def test_score_raw_reads_the_weights() -> None:
    result = CaptumBaseline(("IntegratedGradients",), target=2, settings=CompareSettings(score="raw")).run(_Weights().eval(), _probe())
    assert result.meta["curve_score"].startswith("raw output")
    for name in ("deletion_auc", "insertion_auc"):  # areas of a weight in (0, 1)
        assert 0.0 < result.scalars[name] < 1.0
