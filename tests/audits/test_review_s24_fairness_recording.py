"""Review of the change (git diff 8e7989a): FairnessAudit records its carrier layers' activations in its own factual
and flip passes (cb8bad5). With ``worlds=True`` the flip's pass also runs every world's changed rows, and the recording
copied the layer's output on all of them (4 worlds: 64 rows for the 16 of the flip the carriers read, 4x the memory
the layer's own passes held); it copies the flip's rows only and counts the others."""

from __future__ import annotations

import torch

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip, Intersections, carrier_unit_effects
from lightning_causal.causal.scm import fairness
from tests.audits.test_fairness_passes import _probe_and_model


def test_the_flip_pass_copies_only_the_rows_the_carriers_read(monkeypatch):
    x, y, model = _probe_and_model()
    flip = Intersections(AttributeFlip(0), {"sex": 0, "race": 1})
    copied: list[int] = []
    real = fairness.capture

    def counting(model, names, **kw):  # the rows of every copy the recording keeps
        keep = kw.get("keep")
        if keep is not None:  # the stacked-rows check's rows alone (mends_s42a) are handed back as they are, not copied
            kw["keep"] = lambda name, value: (lambda kept: kept if kept is value else copied.append(kept.shape[0]) or kept)(
                keep(name, value))
        return real(model, names, **kw)

    monkeypatch.setattr(fairness, "capture", counting)
    result = FairnessAudit(flip, worlds=True, layers=["1"]).run(model, Probe(x, y))
    assert sum(copied) == 16 + 16  # the factual pass and the flip's 16 changed rows (was 16 + 64: every world's rows)
    monkeypatch.setattr(fairness, "capture", real)
    own = carrier_unit_effects(model, x, flip, "1").abs().mean(0)
    assert torch.equal(result.vectors["carriers/1"], own)  # the numbers of the layer's own passes
