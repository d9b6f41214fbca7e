"""Review of newuser51's 472918fa: CausalRepairModule's refusal of a model returning a ``Normal`` without ``output=``
named each term's own output as ``CounterfactualFairnessTerm(flip, output='mean')``. Run as written, that term compares
the sigmoid of the mean (the default distance, a class probability), warns that the penalty of a regression output
barely moves the model, and pays 0.087 for a mean moved by 0.5 on every row. The message (and docs/your_model.md) names
``distance='logit'``: the term written in the message, evaluated, pays ``|mean(x) - mean(x_cf)|`` without a warning."""

from __future__ import annotations

import math
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


class Held(Heteroscedastic):
    """The same Normal held in a mapping beside a tensor: ``{"dist": Normal(...), "h": ...}``."""

    def forward(self, x):
        return {"dist": super().forward(x), "h": self.lin(x)}


def test_a_held_normal_is_refused_naming_its_read_and_the_reads_written_train_on_the_nll():
    """Before: select_output's TypeError, whose `output=lambda out: out['dist'].mean` gives the task loss the mean
    alone (`-out.log_prob(y)` then fails on a tensor)."""
    module = CausalRepairModule(Held(), [CounterfactualFairnessTerm(AttributeFlip(2), output="mean")],
                                task_loss=lambda out, y: -out.log_prob(y).mean())
    with pytest.raises(MisconfigurationException, match=r"got dict holding a Normal at `out\['dist'\]`, and no `output=`") as info:
        _trainer().fit(module, DataLoader(TensorDataset(X, Y), batch_size=4))
    said = str(info.value)
    stacked = re.search(r"`output=(lambda out: torch\.stack\(\[out\['dist'\]\.mean, out\['dist'\]\.stddev\], -1\))`", said)
    term_read = re.search(r"each term's `output=(lambda out: out\['dist'\]\.mean)`", said)
    assert stacked is not None and term_read is not None
    scope = {"torch": torch}
    term = CounterfactualFairnessTerm(AttributeFlip(2), output=eval(term_read.group(1), scope), distance="logit")
    module = CausalRepairModule(Held(), [term], output=eval(stacked.group(1), scope),
                                task_loss=lambda o, y: -torch.distributions.Normal(o[..., 0], o[..., 1]).log_prob(y).mean())
    with torch.no_grad():
        loss = module.task_loss(module.model_outputs(X), Y)
        paid = term.loss(module.model, X, Y)
    mean, log_sd = X[:, 0] + 0.5 * X[:, 2], 0.25 * X[:, 1]
    hand = (0.5 * ((Y - mean) / log_sd.exp()) ** 2 + log_sd + 0.5 * math.log(2 * math.pi)).mean()
    torch.testing.assert_close(loss, hand, rtol=0, atol=1e-6)  # the Gaussian NLL written out
    torch.testing.assert_close(paid, torch.tensor(0.5), rtol=0, atol=1e-6)  # |0.5 x2 - 0.5 (1 - x2)|
