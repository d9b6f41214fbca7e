"""InputEffectAudit on a model that rules a class out with ``-inf`` where an input takes some values (an action
masked as illegal: ``out.masked_fill(x[:, :1] > 0.5, float("-inf"))`` on class 2, newuser60 trial): the ACE curve
sets the group to values above 0.5, where the samples explained as class 2 give -inf, so ``ace_range`` and
``mean_ace_range`` were NaN with no note, while the effects (``do(x_0 := 0)``) are finite. A note now names the groups
and why; the numbers are unchanged."""

from __future__ import annotations

import math

import torch
from torch import nn

from lightning_causal import InputEffectAudit
from lightning_causal.audits import Probe


class _Legal(nn.Module):
    """Logits ``(x_1, x_2, 1)``; class 2 ruled out where ``x_0 > 0.5``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.stack([x[:, 1], x[:, 2], torch.ones_like(x[:, 0])], 1)
        illegal = torch.zeros_like(out, dtype=torch.bool)
        illegal[:, 2] = x[:, 0] > 0.5
        return out.masked_fill(illegal, float("-inf"))


def test_the_groups_of_an_undefined_ace_range_are_named() -> None:
    x = torch.tensor([[0.1, 0.0, 0.0], [0.2, 0.3, 0.0], [0.9, 2.0, 0.0], [0.8, 0.0, 2.0]])  # samples 0, 1: class 2
    result = InputEffectAudit(feature_names=["state", "a", "b"], ace_values=4).run(_Legal(), Probe(x))
    assert result.meta["targets"] == [2, 2, 0, 1]
    assert torch.isfinite(result.maps["effect"]).all()  # do(state := 0) keeps class 2 legal: effects defined
    assert math.isnan(float(result.vectors["ace_range"][0])) and torch.isfinite(result.vectors["ace_range"][1:]).all()
    notes = [n for n in result.meta.get("notes", []) if n.startswith("ace_range is not finite")]
    assert notes == [notes[0]] and notes[0].startswith("ace_range is not finite for groups ['state'] (so neither is mean_ace_range)")
