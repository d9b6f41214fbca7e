"""``suspect_units`` (``BackdoorAudit(layers=...)``'s suspect units) on a layer that the model runs several times per
forward pass (a new user's test-time-augmentation wrapper averaging its backbone's logits over views of the input).

Before: the do-grid of each unit, from its mean on clean inputs to its mean on triggered ones, was read with ``capture``,
which keeps the last call's output, while the grid's values are then set at every call: with the backbone's last view
one the trigger does not reach (or moves less), the grid collapsed and no unit was flagged, and the same model with its
views in another order gave other scores; all the user saw was "capture keeps its last call's output". Now the means
are over the samples, positions and calls, so the scores do not depend on the order of the views, without the warning.
"""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal.backdoor.suspects import suspect_units
from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.causal.effects.unit_effects import unit_effects
from lightning_causal.causal.engine.unit_interventions import SetTo


class _TTA(nn.Module):
    def __init__(self, views: tuple[str, ...]) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 6)
        self.fc2 = nn.Linear(6, 3)
        self.views = views

    def forward(self, x):
        make = {"id": lambda v: v, "flip": lambda v: v.flip(-1), "blank": torch.zeros_like}
        return torch.stack([self.fc2(torch.relu(self.fc1(make[v](x).flatten(1)))) for v in self.views]).mean(0)


def _setup(views):
    torch.manual_seed(0)
    model = _TTA(views).double()
    mask = torch.zeros(1, 4, 4, dtype=torch.float64)
    mask[:, 3:, 3:] = 1
    trigger = Trigger(mask, 3.0, 0)
    x = torch.rand(12, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    return model, trigger, x


@pytest.mark.parametrize("views", [("id", "blank"), ("id", "flip", "blank")])
def test_scores_do_not_depend_on_the_order_of_the_calls(views):
    model, trigger, x = _setup(views)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no word about `capture`'s last call
        forward = suspect_units(model, x, trigger, "fc1").score
    model.views = views[::-1]
    backward = suspect_units(model, x, trigger, "fc1").score
    assert float(forward.abs().max()) > 0.01
    torch.testing.assert_close(forward, backward)


def test_the_grid_spans_the_units_means_over_every_call():
    model, trigger, x = _setup(("id", "blank"))
    with torch.no_grad():
        def mean_over_calls(inputs):
            return torch.stack([model.fc1(v.flatten(1)) for v in (inputs, torch.zeros_like(inputs))]).mean((0, 1))
        lo, hi = mean_over_calls(x), mean_over_calls(trigger.apply(x))
    grid = [SetTo(lo + (hi - lo) * a) for a in torch.linspace(0, 1, 8).tolist()]
    want = unit_effects(model, trigger.apply(x), "fc1", grid, target=0).mean(0)
    torch.testing.assert_close(suspect_units(model, x, trigger, "fc1").score, want)
