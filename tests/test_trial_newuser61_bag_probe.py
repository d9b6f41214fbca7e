"""Multi-hot histories for an ``nn.EmbeddingBag`` with ``offsets`` and ``per_sample_weights`` (newuser61 trial):
``audit_model`` of the flat ids (a probe without labels) answered "for one sample of 7 features pass probe[None],
for 7 samples of one feature probe[:, None]", neither of which is a bag's sample; the estimators' own refusal
(``linked_samples.bag_hint``) says what to do, pad the bags into ``[N, K]``, and the callback and ``audit_model`` now
say it too, with the weights padded alike. That way gives the effect of removing each item as a hand ``do()``."""

from __future__ import annotations

import pytest
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import InputEffectAudit, Probe, audit_model
from lightning_causal.causal import input_effects


class History(nn.Module):
    """A score per user from the weighted bag of the items of their history."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.bag = nn.EmbeddingBag(50, 8, mode="sum", padding_idx=0)
        self.head = nn.Linear(8, 1)

    def forward(self, ids, offsets=None, per_sample_weights=None):  # flat ids with offsets, or padded ids [N, K]
        return self.head(self.bag(ids, offsets, per_sample_weights=per_sample_weights)).squeeze(1)


def test_audit_model_of_flat_bag_ids_says_to_pad_the_bags():
    flat, offsets, weights = torch.tensor([3, 4, 5, 6, 7, 8, 9]), torch.tensor([0, 2, 3]), torch.rand(7)
    probe = Probe(flat, additional_forward_args={"offsets": offsets, "per_sample_weights": weights})
    with pytest.raises(MisconfigurationException, match=r"\[7\].*Pad each sample's bag into ids \[N, K\].*per_sample_weights` "
                                                         r"padded alike") as err:
        audit_model(History().eval(), [InputEffectAudit(baseline=0)], probe)
    assert "probe[None]" not in str(err.value)


def test_padded_bags_with_weights_give_the_hand_removal_of_each_item():
    model = History().eval()
    ids = torch.tensor([[3, 4, 0], [5, 0, 0], [6, 7, 8]])
    weights = torch.tensor([[0.5, 2.0, 0.0], [1.0, 0.0, 0.0], [0.25, 1.0, 3.0]])
    effects = input_effects(model, ids, baseline=0, additional_forward_args={"per_sample_weights": weights})
    with torch.no_grad():  # do(slot k := 0): the padding id, which the bag leaves out
        hand = torch.stack([model(ids, per_sample_weights=weights)
                            - model(ids.index_fill(1, torch.tensor([k]), 0), per_sample_weights=weights) for k in range(3)], 1)
    assert torch.allclose(effects, hand, atol=1e-6)
    assert effects[1, 1:].eq(0).all() and effects[0, 2] == 0  # padded slots: no item, no effect
