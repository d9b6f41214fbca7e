"""UnitImportanceAudit's note on unreached samples ended "changes the other {unreached}", counting the unreached samples
of the whole probe, where with position units of padded inputs the figures before it count the samples holding the top
position: a sample the layer never reaches that does not hold that position was counted among "the other" ones of its
holders (3 where 2 of its 4 holders are unreached). Hand-counted here."""
import torch

from lightning_causal.audits import Probe, UnitImportanceAudit
from tests.audits.test_mends_s39b_unreached_positions import _GatedNodes


def test_the_unreached_note_counts_the_unreached_holders_of_the_top_position():
    g = torch.Generator().manual_seed(1)
    keep = torch.arange(6)[None] < torch.tensor([6, 2, 6, 3, 6, 2, 2, 6, 4, 3])[:, None]
    x = torch.randn(10, 6, 3, generator=g) * keep[..., None]
    gate = torch.tensor([True, True, False, True, False, False, True, True, True, True])  # 2, 4, 5 unreached
    probe = Probe(x, additional_forward_args={"gate": gate, "attention_mask": keep})
    result = UnitImportanceAudit(["mid"], unit_dim=1, target=1).run(_GatedNodes().eval(), probe)
    assert result.meta["unreached/mid"] == 3
    u = int(result.vectors["importance/mid"].argmax())
    holders = keep[:, u]
    assert int(holders.sum()) == 4 and int((holders & gate).sum()) == 2  # samples 0 and 7 reached, 2 and 4 not; 5 short
    note = next(n for n in result.meta["notes"] if n.startswith("mid: its top unit's importance is"))
    assert "over the 2 probe samples holding its position it changes" in note and "over all 4 holding its position" in note
    assert "changes the other 2 holding it (3 of the probe's 10 samples in all)" in note, note
