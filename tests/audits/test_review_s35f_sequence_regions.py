"""Review of newuser75's trial (session 35): InputEffectAudit's rows and text card named a frame of a padded sequence
``[N, T, F]`` (40 frames of 24 filterbank features, too few frames for the shape rule of a signal) as an image's box,
"14 at rows 14–14, cols 0–23": the lengths that count its steps say it is a sequence, so the rows read "steps 14–14",
every feature held (``group_regions.group_region``'s ``padding``). An input without lengths keeps the shape rule."""

import torch
from torch import nn

from lightning_causal import InputEffectAudit
from lightning_causal.audits import Probe
from lightning_causal.reporting.summary import _label_and_value


class Frames(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(24, 3)

    def forward(self, x, lengths):
        return self.lin(x).mean(1)


def _frames(x: torch.Tensor) -> torch.Tensor:
    return torch.arange(x.shape[1]).reshape(1, -1, 1).expand(1, *x.shape[1:])  # one group per frame


def test_a_padded_sequences_frames_are_named_as_steps():
    x = torch.randn(6, 40, 24, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([40, 31, 25, 40, 18, 33])
    x[torch.arange(40) >= lengths[:, None]] = 0
    result = InputEffectAudit(_frames, target=1, ace_values=None).run(Frames().eval(), Probe(x, None, {"lengths": lengths}))
    rows = result.tables["top_groups"]
    assert rows and all(set(r) & {"rows", "cols"} == set() and r["steps"] == [r["group"], r["group"] + 1] for r in rows)
    label, _ = _label_and_value(rows[0])
    assert label == f"{rows[0]['group']} at steps {rows[0]['group']}–{rows[0]['group']}"


def test_an_unpadded_grid_keeps_rows_and_columns():
    x = torch.randn(4, 28, 28, generator=torch.Generator().manual_seed(0))
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 3)).eval()
    result = InputEffectAudit(_frames, target=1, ace_values=None).run(model, Probe(x, None))
    assert all({"rows", "cols"} <= set(r) and "steps" not in r for r in result.tables["top_groups"])
