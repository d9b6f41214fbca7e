"""A code a float column's embedding lacks is told in one wording, whoever set it: the warning before the pass for a
``baseline`` (``token_ids._check_codes``) and for a ``counterfactual`` (``counterfactual_checks.check_counterfactual_ids``)
were two copies of the same text and of its ``column j`` / ``position j`` words, and had drifted apart ("casts the
column to indices" beside "casts it to indices"). One function, ``token_ids.warn_codes_outside`` (with
``code_position``), serves both."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import (
    FractionalCodeWarning,
    counterfactual_fairness_gap,
    input_effects,
)


class Region(nn.Module):
    """Numeric values and a region code 0..3 kept as a float value (column 2 of a table, or position 5 of a sample
    ``[2, 3]``), cast here."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.region = nn.Embedding(4, 2)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        code = flat[:, 2] if x.dim() == 2 else flat[:, 5]
        return self.head(torch.cat([flat[:, :2], self.region(code.long())], 1))


def _table(dims: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(16, 2, generator=g), torch.randint(0, 4, (16, 1), generator=g).float()], 1)
    if dims == 2:
        return x
    return torch.cat([x[:, :2], torch.randn(16, 3, generator=g), x[:, 2:]], 1).reshape(16, 2, 3)


def _set_code_4(x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(x.shape[0], -1).clone()
    flat[:, 2 if x.dim() == 2 else 5] = 4.0
    return flat.reshape(x.shape)


def _warning(call) -> str:  # noqa: ANN001
    with pytest.warns(FractionalCodeWarning) as caught, pytest.raises(ValueError, match="category code"):
        call()
    assert len(caught) == 1
    return str(caught[0].message)


@pytest.mark.parametrize(("dims", "where"), [(2, "column 2"), (3, "position 5 (of a sample's flattened values)")])
def test_a_baseline_and_a_counterfactual_setting_the_same_code_are_told_alike(dims: int, where: str) -> None:
    x, model = _table(dims), Region().eval()
    baseline = _set_code_4(torch.zeros(1, *x.shape[1:]))[0]
    by_baseline = _warning(lambda: input_effects(model, x, baseline=baseline))
    by_counterfactual = _warning(lambda: counterfactual_fairness_gap(model, x, _set_code_4))
    tail = (f" sets {where} to 4; that column looks like a category code that Embedding 'region' looks up (its values "
            "were the embedding's indices in every clean row), whose codes are 0 <= code < 4: if the model casts the "
            "column to indices (x[:, j].long()), the pass fails (on a GPU with a device-side assert); a model that maps "
            "the value into range (bucketize, clamp) runs")
    assert by_baseline == "`baseline`" + tail
    assert by_counterfactual == f"`counterfactual` (CallableCounterfactual(_set_code_4, column=None)){tail}"
