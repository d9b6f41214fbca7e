"""Review of newuser51's 472918fa: CausalRepairModule's refusal of a model returning a ``Normal`` without ``output=``
named each term's own output as ``CounterfactualFairnessTerm(flip, output='mean')``. Run as written, that term compares
the sigmoid of the mean (the default distance, a class probability), warns that the penalty of a regression output
barely moves the model, and pays 0.087 for a mean moved by 0.5 on every row. The message (and docs/your_model.md) names
``distance='logit'``: the term written in the message, evaluated, pays ``|mean(x) - mean(x_cf)|`` without a warning."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import AttributeFlip, CausalRepairModule, CounterfactualFairnessTerm
from tests.test_trial_newuser51_distribution_repair import (  # Normal(x0 + 0.5 x2, exp(0.25 x1))
    Heteroscedastic,
    X,
    Y,
    _trainer,
)


def _refusal() -> str:
    module = CausalRepairModule(Heteroscedastic(), [CounterfactualFairnessTerm(AttributeFlip(2), output="mean")],
                                task_loss=lambda out, y: -out.log_prob(y).mean())
    with pytest.raises(MisconfigurationException) as info:
        _trainer().fit(module, DataLoader(TensorDataset(X, Y), batch_size=4))
    return str(info.value)


def test_the_term_the_refusal_names_pays_the_means_change_without_a_warning():
    written = re.search(r"`(CounterfactualFairnessTerm\(flip, [^`]*\))`", _refusal())
    assert written is not None
    term = eval(written.group(1), {"CounterfactualFairnessTerm": CounterfactualFairnessTerm, "flip": AttributeFlip(2)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paid = term.loss(Heteroscedastic(), X, Y)
    assert [str(w.message) for w in caught] == []  # before: 'the sigmoid of a regression output saturates ...'
    # |mean(x) - mean(x_cf)| = |0.5 x2 - 0.5 (1 - x2)| = 0.5 on every row (x2 in {0, 1})
    torch.testing.assert_close(paid, torch.tensor(0.5), rtol=0, atol=1e-6)
