"""Review s32c of f2a4a38b: the perturbation curves' refusal of rows that sum to 1 named the way out for CaptumBaseline
only (``CaptumBaseline(..., settings=CompareSettings(score='raw'))``), also where ``perturbation_curve`` itself was
called, whose own argument is ``score``. It now names both; the way out on a mixture's weights reads them as they are
(the curve's first point, nothing deleted, is the mean weight of the target, by hand)."""

import pytest
import torch
from torch import nn

from lightning_causal.baselines import perturbation_curve


def _mixture() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Softmax(1)).eval()  # mixture weights [N, 3], no class probabilities
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    return model, x, torch.arange(4).expand(8, 4)


def test_direct_call_is_told_its_own_argument() -> None:
    model, x, mask = _mixture()
    with pytest.raises(ValueError, match=r"`perturbation_curve\(\.\.\., score='raw'\)`, `CaptumBaseline\(\.\.\., settings="):
        perturbation_curve(model, x, mask, torch.randn(8, 4), target=0)


def test_the_way_out_reads_the_weights() -> None:
    model, x, mask = _mixture()
    fractions, curves = perturbation_curve(model, x, mask, torch.randn(8, 4), target=0, score="raw")
    assert float(fractions[0]) == 0.0
    torch.testing.assert_close(curves[:, 0], model(x)[:, 0].detach())
