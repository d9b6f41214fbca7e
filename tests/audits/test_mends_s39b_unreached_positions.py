"""UnitImportanceAudit's note on unreached samples (an exit taken before a layer) gave the top unit's importance over
the samples the layer changes as its importance times n / (n - unreached), a plain mean's rescaling; with position
units of padded inputs (unit_dim=1 beside an attention_mask) each position's importance is its mean over the samples
holding it (20968a25), so that figure was wrong where position units and unreached samples meet. It is now the mean
over the samples that hold the position and that the layer changes, computed by hand here."""
import re

import torch
from torch import nn

from lightning_causal.audits import Probe, UnitImportanceAudit
from lightning_causal.causal import unit_effects


class _GatedNodes(nn.Module):
    """Node slots [N, T, D] under an attention_mask; samples whose gate is off take another path (never read `mid`)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.mid, self.head, self.other = nn.Linear(3, 8), nn.Linear(8, 8), nn.Linear(8, 2), nn.Linear(3, 2)
        self.register_buffer("w", torch.linspace(1.0, 6.0, 6)[:, None])  # later slots weigh more: the top one few hold

    def forward(self, x, gate, attention_mask):
        keep = attention_mask.bool()[..., None]
        h = torch.tanh(self.mid(torch.tanh(self.inp(x))))
        return torch.where(gate[:, None], self.head((h * keep * self.w).sum(1)), self.other(x.sum(1)))


def _probe():
    g = torch.Generator().manual_seed(1)
    keep = torch.arange(6)[None] < torch.tensor([6, 2, 6, 3, 6, 6, 2, 6, 4, 3])[:, None]
    x = torch.randn(10, 6, 3, generator=g) * keep[..., None]
    gate = torch.tensor([True, True, False, True, False, False, True, True, True, True])
    return Probe(x, additional_forward_args={"gate": gate, "attention_mask": keep}), keep, gate


def test_the_unreached_note_gives_the_position_mean_over_the_changed_samples_holding_it():
    probe, keep, gate = _probe()
    model = _GatedNodes().eval()
    result = UnitImportanceAudit(["mid"], unit_dim=1, target=1).run(model, probe)
    e = unit_effects(model, probe.inputs, "mid", unit_dim=1, target=1, additional_forward_args=probe.additional_forward_args)
    assert bool((e[~gate] == 0).all()) and result.meta["unreached/mid"] == 3
    imp = (e.abs() * keep).sum(0) / keep.sum(0)  # each slot over the samples holding it
    torch.testing.assert_close(result.vectors["importance/mid"], imp)
    u = int(imp.argmax())
    assert u in (4, 5) and int(keep[:, u].sum()) == 5 and int((keep[:, u] & gate).sum()) == 2  # held by 5, 2 changed
    held = keep[:, u] & gate  # the samples holding slot u that the layer changes
    by_hand = float(e[held, u].abs().sum() / held.sum())
    rescaled = float(imp[u]) * 10 / 7  # what the note said: a plain mean's rescaling
    assert abs(by_hand - rescaled) > 0.05 * by_hand
    note = next(n for n in result.meta["notes"] if n.startswith("mid: its top unit's importance is"))
    shown = float(re.search(r"importance is ([\d.e-]+) over", note).group(1))
    assert abs(shown - by_hand) <= 0.005 * by_hand
    # the counts name the samples each figure averages (final read E: "over the 7 probe samples" for a mean over 2)
    assert "over the 2 probe samples holding its position it changes" in note
    assert f"{float(imp[u]):.3g} over all 5 holding its position" in note
