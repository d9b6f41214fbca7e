"""An audit told to explain a class the model rules out with ``-inf`` (``InputEffectAudit(target=3)`` of a
class-incremental model whose class 3 is not yet seen: ``logits.masked_fill(~seen, float("-inf"))``, newuser60 trial)
gets NaN effects, ``-inf − (-inf)``, and its note blamed only "a diverged model, or a float16 model whose logits pass
65504" and offered a float32 copy: the note now names the class ruled out by ``target=`` too, with the way out."""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from lightning_causal import CaptumBaseline, InputEffectAudit, UnitImportanceAudit
from lightning_causal.audits import Probe


class _Incremental(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body, self.head = nn.Sequential(nn.Linear(3, 4), nn.ReLU()), nn.Linear(4, 4)
        self.register_buffer("seen", torch.tensor([True, True, True, False]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).masked_fill(~self.seen, float("-inf"))


def test_the_notes_of_a_ruled_out_target_name_it() -> None:
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    probe = Probe(x, torch.zeros(6, dtype=torch.long))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = [InputEffectAudit(target=3, ace_values=None).run(_Incremental(), probe),
                   UnitImportanceAudit(["body.1"], target=3).run(_Incremental(), probe),
                   CaptumBaseline(("Saliency",), target=3).run(_Incremental(), probe)]
    assert math.isnan(results[0].scalars["mean_abs_effect"])  # -inf − (-inf) in every sample: undefined, and said why
    for result in results:
        notes = [n for n in result.meta["notes"] if "not finite" in n or "hold NaN" in n]
        assert notes, result.meta["notes"]
        assert all("a class the model rules out with -inf" in n and "`target=`" in n for n in notes)
