"""Item bags padded with an ``nn.EmbeddingBag``'s ``padding_idx`` and explained against another id (newuser88 trial:
``InputEffectAudit(baseline=1)``, an "unknown item" id, without ``special_tokens``). The padded slots hold no item, yet
each got the effect of adding item 1 to its bag (0.107 in every padded slot of the mean bag), mixed into the slots'
summaries as if a feature, without a word. A warning now names the bag, the padding id, how many slots and the way
(``special_tokens=(0,)``); with it the padded slots keep their padding and have effect 0, and ``baseline=0`` (which
removes items and leaves padding as padding) warns of nothing."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import InputEffectAudit, audit_model
from lightning_causal.causal import input_effects


class Bag(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.bag = nn.EmbeddingBag(30, 8, mode="mean", padding_idx=0)
        self.head = nn.Linear(8, 2)

    def forward(self, ids):
        return self.head(self.bag(ids))


def ids() -> torch.Tensor:
    x = torch.randint(1, 30, (16, 6), generator=torch.Generator().manual_seed(0))
    x[:, 3:] = 0  # three items per bag, then padding
    return x


def test_a_baseline_that_fills_the_padding_is_warned_of():
    with pytest.warns(UserWarning, match=r"baseline 1 fills 48 slot\(s\) holding the padding id 0 of nn.EmbeddingBag "
                                         r"'bag'.*special_tokens=\(0,\)"):
        effects = input_effects(Bag().eval(), ids(), baseline=1, target=1)
    assert effects[:, 3:].ne(0).all()  # what the warning is about: adding item 1 where there was none


def test_the_audit_warns_too_and_special_tokens_keep_the_padding():
    with pytest.warns(UserWarning, match="fills 48 slot"):
        audit_model(Bag().eval(), [InputEffectAudit(baseline=1, ace_values=None)], (ids(), torch.zeros(16).long()))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        kept = input_effects(Bag().eval(), ids(), baseline=1, special_tokens=(0,), target=1)
        removed = input_effects(Bag().eval(), ids(), baseline=0, target=1)
    assert kept[:, 3:].eq(0).all() and removed[:, 3:].eq(0).all()
