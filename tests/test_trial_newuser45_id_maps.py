"""An input of one value per sample ``[N]`` (a recommender's user id beside the item and dense inputs, explained with
``explain="user"``; newuser45 trial) had no figure kind: the callback warned 'no figure kind recognised for inputs of
shape [256] (pass figure_kind= to choose one of (...))', and the kind a one-column table would take,
``figure_kind="tabular"``, failed with 'IndexError: index 1 is out of bounds for dimension 0 with size 1' (the
table's width read as the probe's size). ``[N]`` is read as ``[N, 1]``: ids as tokens, values as a one-column table."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import InputEffectAudit, Probe
from lightning_causal.reporting.figure_kinds import infer_kind
from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.tabular_maps import tabular_maps


class Scalar(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [N]: class scores (2x, -x)
        return torch.stack([2 * x, -x], 1)


def test_one_value_per_sample_is_a_column_or_a_token() -> None:
    assert infer_kind(torch.zeros(8)) == "tabular"
    assert infer_kind(torch.zeros(8, dtype=torch.long)) == "tokens"
    assert infer_kind(torch.zeros(8, dtype=torch.long), {"feature_names": ["user"]}) == "tabular"


def test_a_one_column_table_of_shape_n_is_drawn_with_its_mean_effect() -> None:
    x = torch.tensor([1.0, -2.0, 3.0, 0.5, -1.0, 2.5])
    result = InputEffectAudit(target=0, ace_values=None).run(Scalar(), Probe(x))
    [(_, fig)] = tabular_maps(MapData(x, dict(result.maps), result.audit, result.meta))
    [bar] = fig.axes[0].patches
    assert bar.get_width() == pytest.approx(float((2 * x).abs().mean()))  # δ = 2x - 2·0 at the baseline 0, by hand


def test_a_one_column_table_is_laid_out(tmp_path) -> None:
    # one bar made a figure of 1.52 inches: 'Tight layout not applied' (a UserWarning at every render), the caption cut
    x = torch.tensor([[1.0], [-2.0], [3.0], [0.5]])
    result = InputEffectAudit(target=0, ace_values=None).run(nn.Linear(1, 2), Probe(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        [(_, fig)] = tabular_maps(MapData(x, dict(result.maps), result.audit, result.meta))
        fig.savefig(tmp_path / "one_column.png")
    assert fig.get_size_inches()[1] >= 1.74  # two bars' height
