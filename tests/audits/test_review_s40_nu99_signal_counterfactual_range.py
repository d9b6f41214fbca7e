"""Review of a53ff195: CounterfactualAudit's figure draws the input and the counterfactual on the input's range, which
keeps an image readable where the search drove a pixel far out of it. A univariate signal ([N, 1, T]) is drawn as lines,
though: on the input's range a counterfactual's spike above the signal was clamped to the input's own peak, so the
counterfactual line read as the input (a signal in [0, 0.8] given a spike of 1.47 at its last step drew no spike at
all). A signal's lines keep the joint range, on which both lines are whole (an image keeps the input's range:
tests/audits/test_newuser99_counterfactual_panels_on_input_range.py)."""

import torch

from lightning_causal.audits import counterfactual as cf_module
from lightning_causal.audits.counterfactual import split_triptych


def test_a_signals_spike_beyond_its_range_is_drawn():
    t = torch.linspace(0, 1, 24)
    x = (0.4 + 0.4 * torch.sin(2 * torch.pi * 3 * t)).reshape(1, 1, 24).repeat(2, 1, 1)  # [N, 1, T] in [0, 0.8]
    cf = x.clone()
    cf[:, 0, 5] = 1.5  # a spike well above the signal's peaks
    panels = split_triptych(cf_module._triptych(x, cf))
    assert panels["input"].shape == (2, 1, 1, 24)  # drawn as lines (counterfactual_figure's univariate signal)
    for k in range(2):
        line, cf_line = panels["input"][k, 0, 0], panels["counterfactual"][k, 0, 0]
        assert cf_line[5] == 1 and line.max() < cf_line[5] - 0.3  # the spike rises above every peak of the input
        unchanged = torch.arange(24) != 5
        torch.testing.assert_close(cf_line[unchanged], line[unchanged])  # one scale: the rest of the lines coincide
        lo, hi = float(x[k].min()), 1.5  # the joint range
        torch.testing.assert_close(line, (x[k, 0] - lo) / (hi - lo))

