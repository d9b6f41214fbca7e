"""``top{k}_share`` was tagged by the number of units or groups it summed, ``min(top_k, width − 1)``: a layer grown
or pruned between audits (a head of 5 classes grown to 12, a layer pruned from 64 units to 8) changed tag
(``head/top4_share``, then ``head/top10_share``), so its TensorBoard series broke in two and a monitor of the first tag
found nothing. The tag keeps ``top_k``; how many were summed, of how many, is in ``meta["top_shares"]`` and, where
fewer than ``top_k``, beside the value in the text card. Hand-weighted models: unit u (input group g) moves the output by
``w_u``, so the shares are sums of the weights."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits import InputEffectAudit, Probe, UnitImportanceAudit
from lightning_causal.callbacks import AuditEarlyStopping, CausalAuditCallback
from lightning_causal.reporting.summary import markdown_summary
from tests.helpers.lightning import SgdMlp, quick_trainer
from tests.helpers.models import hand_linear


def _widened(width: int) -> nn.Module:
    """``x -> h = [1, 2, ..., width] · x -> (Σ h, 0)``: zeroing unit u moves output 0 by u + 1 at x = 1."""
    model = nn.Sequential(nn.Linear(1, width, bias=False), nn.Linear(width, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.arange(1.0, width + 1).unsqueeze(1))
        model[1].weight.zero_()
        model[1].weight[0].fill_(1.0)
    return model


def test_a_layer_grown_between_audits_keeps_its_share_tag():
    audit = UnitImportanceAudit(["0"], top_k=10, target=0)
    narrow, wide = (audit.run(_widened(w), Probe(torch.ones(3, 1))) for w in (5, 12))
    assert [k for k in narrow.scalars if k.endswith("_share")] == ["0/top10_share"]
    assert [k for k in wide.scalars if k.endswith("_share")] == ["0/top10_share"]
    assert narrow.scalars["0/top10_share"] == pytest.approx((5 + 4 + 3 + 2) / 15)  # 4 strongest of 5
    assert wide.scalars["0/top10_share"] == pytest.approx((78 - 1 - 2) / 78)  # 10 strongest of 12
    assert narrow.meta["top_shares"] == {"0/top10_share": [4, 5]} and wide.meta["top_shares"] == {"0/top10_share": [10, 12]}
    assert "0/top10_share (4 of 5) 0.933" in markdown_summary(0, [narrow])  # the width's word is in the card, not the tag
    assert "0/top10_share 0.962" in markdown_summary(0, [wide])  # all 10 summed: nothing to say


def test_inputs_of_another_width_keep_the_share_tag():
    audit = InputEffectAudit(top_k=5, ace_values=None)
    four = audit.run(hand_linear([1.0, -2.0, 3.0, 4.0]), Probe(torch.ones(2, 4)))
    eight = audit.run(hand_linear([float(w) for w in range(1, 9)]), Probe(torch.ones(2, 8)))
    assert four.scalars["top5_share"] == pytest.approx(9 / 10) and four.meta["top_shares"] == {"top5_share": [3, 4]}
    assert eight.scalars["top5_share"] == pytest.approx(30 / 36) and eight.meta["top_shares"] == {"top5_share": [5, 8]}
    assert "top5_share (3 of 4) 0.9" in markdown_summary(0, [four]) and "top5_share 0.833" in markdown_summary(0, [eight])


def test_a_monitor_of_the_former_tag_is_told_the_tag_now():
    g = torch.Generator().manual_seed(0)
    loader = DataLoader(TensorDataset(torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)), batch_size=16)
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8)  # 4 columns, top_k=5: formerly top3_share
    stop = AuditEarlyStopping("causal/input_effect/top3_share")
    trainer = quick_trainer(callbacks=[cb, stop], max_epochs=2, num_sanity_val_steps=0)
    now = r"carries the audit's `top_k`.*monitor 'causal/input_effect/top5_share'"
    with pytest.warns(UserWarning, match=r"not among the scalars of the audits' dry run.*" + now):  # before training
        with pytest.raises(MisconfigurationException, match=now):  # at the first audit
            trainer.fit(SgdMlp(features=4), loader, loader)
