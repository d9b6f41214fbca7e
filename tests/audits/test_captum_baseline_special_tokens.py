"""``CaptumBaseline(special_tokens=...)`` was a TypeError while ``InputEffectAudit(special_tokens=...)`` works (the
newuser6 recommender trial wrote the same ids to both and hit it; the ids went only through
``settings=CompareSettings(special_tokens=...)``). The audit now takes them as the other audits do."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, CompareSettings, Probe


class Bag(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.out = nn.Embedding(12, 4, padding_idx=0), nn.Linear(4, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        keep = (ids != 0).unsqueeze(-1).float()
        return self.out((self.emb(ids) * keep).sum(1) / keep.sum(1).clamp_min(1))


IDS = torch.tensor([[3, 5, 7, 0], [2, 9, 0, 0], [4, 4, 8, 11], [1, 6, 10, 0]])


def test_special_tokens_given_to_the_audit_equal_the_settings_form():
    model = Bag().eval()
    kw = dict(methods=("FeatureAblation",), baseline=1)
    direct = CaptumBaseline(special_tokens=(0,), **kw).run(model, Probe(IDS))
    settings = CaptumBaseline(settings=CompareSettings(special_tokens=(0,)), **kw).run(model, Probe(IDS))
    plain = CaptumBaseline(**kw).run(model, Probe(IDS))
    for name in ("causal", "FeatureAblation"):
        torch.testing.assert_close(direct.maps[name], settings.maps[name])
    assert direct.scalars == settings.scalars
    # the padding id kept: no effect at the padded slots, where the plain audit replaced 0 by 1 and moved the mean
    assert (direct.maps["causal"][IDS == 0] == 0).all() and (plain.maps["causal"][IDS == 0] != 0).any()


def test_special_tokens_in_two_places_must_agree():
    with pytest.raises(ValueError, match="`special_tokens` in one place"):
        CaptumBaseline(special_tokens=(0,), settings=CompareSettings(special_tokens=(1,)))
    assert CaptumBaseline(special_tokens=(0,), settings=CompareSettings(special_tokens=(0,))).settings.special_tokens == (0,)
    with pytest.raises(ValueError, match="non-negative token ids"):
        CaptumBaseline(special_tokens=(-1,))
