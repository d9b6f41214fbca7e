"""A class the model rules out with ``-inf`` in one row of a counterfactual pair only (a mask that depends on the
input, moved by the flip of the sensitive column): ``CounterfactualFairnessTerm(distance="sym_kl")`` is truly
``+inf`` there (``distance="logit"`` too, leftovers_s32b; it was NaN), and a ``CausalRepairModule`` fit stopped with a ``FloatingPointError``
that named the term and no cause (leftovers_s31c). The error now names the cause and the ways out; the total
variation (``abs_prob``) of the same model is finite and fits."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip


class _Masked(nn.Module):
    """Three classes; class 2 ruled out (``-inf``) for the rows whose column 0 is 1 only."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.lin(x)
        out = torch.zeros_like(z, dtype=torch.bool)
        out[:, 2] = x[:, 0] > 0.5
        return z.masked_fill(out, float("-inf"))


def _fit(distance: str) -> CausalRepairModule:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(32, 4, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()
    y = torch.randint(0, 2, (32,), generator=g)
    repair = CausalRepairModule(_Masked(), [CounterfactualFairnessTerm(AttributeFlip(0), distance=distance)], lr=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False).fit(repair, DataLoader(TensorDataset(x, y), batch_size=16))
    return repair


@pytest.mark.parametrize(("distance", "said"), [("sym_kl", "is +inf"), ("logit", "is +inf")])
def test_the_error_names_the_class_ruled_out_in_one_row_and_the_ways_out(distance: str, said: str) -> None:
    with pytest.raises(FloatingPointError) as caught:
        _fit(distance)
    message = str(caught.value)
    assert f"the term 'counterfactual_fairness' (distance={distance!r}) {said}" in message
    assert "in one row of a pair and not in the other" in message
    assert "distance='abs_prob'" in message and "masked_fill(mask, -1e4)" in message


def test_the_total_variation_of_the_same_model_fits() -> None:
    assert torch.isfinite(_fit("abs_prob").model.lin.weight).all()


def test_the_symmetric_kl_of_a_one_sided_mask_is_inf_and_a_nan_gets_no_note() -> None:
    term = CounterfactualFairnessTerm(AttributeFlip(0), distance="sym_kl")
    a, b = torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([[0.0, 1.0, float("-inf")]])
    value = term.loss_from_outputs(a, b, None)
    assert value.item() == float("inf")
    assert "one row of a pair" in term._non_finite_note(value)
    assert term._non_finite_note(torch.tensor(float("nan"))) == ""  # NaN outputs, not a class ruled out
