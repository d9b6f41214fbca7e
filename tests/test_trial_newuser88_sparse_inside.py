"""A bag-of-words model that needs a sparse tensor, ``torch.sparse.mm(x.coalesce(), W)``, fed a sparse batch (newuser88
trial). The callback and ``audit_model`` read a sparse probe densely, and the core functions take dense rows only, so
the model failed with torch's "coalesce expected sparse coordinate tensor layout but got Strided", which said neither
that the audits had made the probe dense nor what to do; the callback added advice on ``unpack_batch=``, which cannot
help. The error now says so and how to convert inside forward; a model that does, as told, is audited and its effects
are the hand removal of each word."""

from __future__ import annotations

import pytest
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import InputEffectAudit, audit_model
from lightning_causal.causal import input_effects


class Words(nn.Module):
    def __init__(self, converts: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.weight = nn.Parameter(torch.randn(12, 2))
        self.converts = converts

    def forward(self, x):
        if self.converts:
            x = x if x.layout != torch.strided else x.to_sparse()  # as the error advises
        return torch.sparse.mm(x.coalesce(), self.weight)


def counts() -> torch.Tensor:
    x = torch.zeros(6, 12)
    x[torch.arange(6), torch.tensor([1, 3, 3, 5, 7, 9])] = 2.0
    x[:, 4] = 1.0
    return x


def test_core_function_says_to_convert_inside():
    with pytest.raises(RuntimeError, match=r"coalesce expected sparse.*needs a sparse tensor.*x\.to_sparse\(\)"):
        input_effects(Words(), counts(), baseline=0.0, target=1)


def test_audit_model_of_a_sparse_probe_says_the_probe_is_read_densely():
    with pytest.raises(MisconfigurationException, match=r"needs a sparse tensor.*read a sparse probe densely.*x\.to_sparse\(\)"):
        audit_model(Words(), [InputEffectAudit(baseline=0.0, ace_values=None)], (counts().to_sparse(), torch.zeros(6).long()))


def test_a_model_that_converts_inside_gives_the_hand_removal_of_each_word():
    model, x = Words(converts=True), counts()
    effects = input_effects(model, x, baseline=0.0, target=1)
    with torch.no_grad():
        hand = torch.stack([model(x)[:, 1] - model(x.index_fill(1, torch.tensor([j]), 0.0))[:, 1] for j in range(12)], 1)
    assert torch.allclose(effects, hand, atol=1e-5)
    assert effects[:, 0].eq(0).all() and effects[:, 4].ne(0).all()  # an absent word has no effect; a present one has
