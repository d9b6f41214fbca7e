"""Review of d36bc3fe (stacked_rows.mixed_rows_cause): the module named as mixing the rows must get its input the same
alone as in the pass to float rounding, not merely within the refusal's 1%: a per-row LayerNorm given inputs that the
forward's own code mixed by 0.39% of their scale (a batch mean added to inputs near 100) gave 2.2% and was named, the
advice to make a LayerNorm per-row a wrong one. And the refusal's last words are its caller's (Captum's DeepLift takes
no ``max_batch_size``), not always the estimators'."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.stacked_rows import WAY_OUT, RowsAlone, StackedRowsError


class OffsetThenNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm, self.fc = nn.LayerNorm(6), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x + 0.05 * x.mean(0)))  # mixed in the forward's own code, before any module


class BatchAttention(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x @ x.T, 1) @ x


def _refusal(model: nn.Module, x: torch.Tensor, **kw) -> str:
    with pytest.raises(StackedRowsError) as err, torch.no_grad():
        RowsAlone("input_effects", model=model, **kw)(lambda idx: model(x[idx]), torch.arange(len(x)), lambda out: out)
    return str(err.value)


def test_a_per_row_module_amplifying_rows_mixed_before_it_is_not_named():
    torch.manual_seed(0)
    model = OffsetThenNorm().eval()
    x = 100 + torch.randn(6, 6, generator=torch.Generator().manual_seed(1))
    x[:3] += 20
    text = _refusal(model, x)
    assert "mixes the rows of the pass" not in text  # was: module 'norm' mixes the rows ... Make it per-row
    assert "control flow on a batch statistic" in text
    assert all(not m._forward_hooks for m in model.modules())


def test_the_named_module_keeps_its_callers_way_out():
    model = nn.Sequential(nn.Linear(3, 3), BatchAttention(), nn.Linear(3, 2)).eval()
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(2))
    text = _refusal(model, x, way_out="explain with another method")
    assert "module '1' mixes the rows of the pass" in text
    assert text.endswith("Make it per-row, or explain with another method") and WAY_OUT not in text
