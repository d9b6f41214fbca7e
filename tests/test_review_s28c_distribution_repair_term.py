"""Review of newuser51's 472918fa: CausalRepairModule's refusal of a model returning a ``Normal`` without ``output=``
named each term's own output as ``CounterfactualFairnessTerm(flip, output='mean')``. Run as written, that term compares
the sigmoid of the mean (the default distance, a class probability), warns that the penalty of a regression output
barely moves the model, and pays 0.087 for a mean moved by 0.5 on every row. The message (and docs/your_model.md) names
``distance='logit'``: the term written in the message, evaluated, pays ``|mean(x) - mean(x_cf)|`` without a warning."""

from __future__ import annotations

import re
import warnings

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.distributions import Normal
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import AttributeFlip, CausalRepairModule, CounterfactualFairnessTerm

X = torch.tensor([[1.0, 2.0, 1.0], [-1.0, 0.5, 0.0], [0.5, -1.0, 1.0], [2.0, 1.0, 0.0]])
Y = torch.tensor([0.5, -1.0, 3.0, 2.0])


class Heteroscedastic(nn.Module):
    """Normal(x0 + 0.5 x2, exp(0.25 x1)): column 2 a binary attribute, which moves the mean by 0.5."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[1.0, 0.0, 0.5], [0.0, 0.25, 0.0]]))

    def forward(self, x):
        h = self.lin(x)
        return Normal(h[:, 0], h[:, 1].exp())


def _refusal() -> str:
    module = CausalRepairModule(Heteroscedastic(), [CounterfactualFairnessTerm(AttributeFlip(2), output="mean")],
                                task_loss=lambda out, y: -out.log_prob(y).mean())
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0)
    with pytest.raises(MisconfigurationException) as info:
        trainer.fit(module, DataLoader(TensorDataset(X, Y), batch_size=4))
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
