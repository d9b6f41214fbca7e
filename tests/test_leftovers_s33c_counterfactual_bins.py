"""A counterfactual figure of a long input binned only its difference row to the cell's pixels: the input and
counterfactual rows were drawn one pixel per element, so that ``imshow`` dropped most steps of a 1,024-step sequence
and the counterfactual's one changed step (shown in the difference) was not in its own row. The three rows are now
binned alike: each input and counterfactual bin shows the element of its bin's largest change (the bin's mean where
nothing changed), so that counterfactual - input is the difference drawn, bin by bin."""

from __future__ import annotations

import numpy as np
import torch

from lightning_causal.reporting.counterfactual_figures import counterfactual_figure


def _panels(steps: int = 1024, at: int = 700) -> dict[str, torch.Tensor]:
    x = torch.rand(1, 1, 4, steps, generator=torch.Generator().manual_seed(0))
    cf = x.clone()
    cf[0, 0, 2, at] = 1.0 - x[0, 0, 2, at]  # one element changed
    return {"input": x, "counterfactual": cf, "difference": cf - x}


def test_every_row_is_binned_alike_and_shows_the_change() -> None:
    panels = _panels()
    fig = counterfactual_figure(panels, ["a"])
    inp, cf, diff = (np.asarray(ax.get_images()[0].get_array()) for ax in fig.axes[:3])
    assert inp.shape == cf.shape == diff.shape and diff.shape[1] < 1024  # binned, all three alike
    changed = np.flatnonzero(np.abs(diff).max(0))
    assert changed.size == 1 and np.allclose(cf - inp, diff, atol=1e-6)  # counterfactual - input: the difference drawn
    want = float(panels["counterfactual"][0, 0, 2, 700])
    assert abs(cf[2, changed[0]] - want) < 1e-6  # the changed element itself, not a mean of its bin
    unchanged = [b for b in range(diff.shape[1]) if b != changed[0]]
    assert np.allclose(inp[:, unchanged], cf[:, unchanged])


def test_a_short_input_is_drawn_as_it_is() -> None:
    panels = _panels(steps=16, at=3)
    fig = counterfactual_figure(panels, ["a"])
    inp = np.asarray(fig.axes[0].get_images()[0].get_array())
    assert inp.shape == (4, 16) and np.allclose(inp, panels["input"][0, 0].numpy())
