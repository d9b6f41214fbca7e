"""CaptumBaseline's check that the gradient methods follow the model (warn_surrogate_gradient) read the probe's first
two rows only: a straight-through unit that acts on some rows only (a clamp to [-1, 1] whose gradient passes through,
as PACT/LSQ quantisers clip) changes nothing on rows inside the clip, so a probe whose first rows were inside it had
Saliency and IntegratedGradients explain a surrogate with nothing said. The check reads up to ``SURROGATE_ROWS`` rows
spread over the probe (about 30 ms more on a 64-image probe of a small CNN, against a 4 s run)."""

import warnings

import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline
from lightning_causal.audits.base import Probe


class _ClipStraightThrough(nn.Module):
    """``lin(clamp(x, -1, 1))`` whose gradient is ``lin``'s as if there were no clamp (straight through)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 2)

    def forward(self, x):
        return self.lin(x + (x.clamp(-1, 1) - x).detach())


def _probe() -> torch.Tensor:
    x = torch.linspace(-0.9, 0.9, 64).reshape(16, 4)  # inside the clip: the surrogate is the model there
    x[4:] *= 10  # beyond it from the fifth row on: the gradient misses the clamp
    return x


def _surrogate_notes(model, x):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = CaptumBaseline(("Saliency", "IntegratedGradients"), target=0).run(model, Probe(x))
    told = [str(w.message) for w in seen if "misses part of how the output depends" in str(w.message)]
    return [n for n in result.meta.get("notes", []) if "surrogate" in n], told


def test_a_straight_through_clamp_acting_past_the_first_two_rows_is_found():
    notes, told = _surrogate_notes(_ClipStraightThrough(), _probe())
    assert notes == ["['Saliency', 'IntegratedGradients'] follow a gradient that misses how the output moves (a "
                     "straight-through estimator, .detach()): they explain a surrogate"]
    assert len(told) == 1


def test_the_same_clamp_inside_its_clip_on_every_row_is_no_surrogate():
    notes, told = _surrogate_notes(_ClipStraightThrough(), _probe()[:4].repeat(4, 1))  # every row inside the clip
    assert notes == [] and told == []
