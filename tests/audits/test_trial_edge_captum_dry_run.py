"""Trial "edge": CaptumBaseline's dry run on the probe's first 2 samples. Where both had every ReLU off,
Saliency scored every group 0 in them and the fit warned at set-up that it "gives exactly 0 in every
probe sample" to those groups, while the audits of the whole probe gave them non-zero scores. The dry
run no longer warns of it; a probe where no gradient reaches a group in any sample still warns."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, Probe


def _model() -> nn.Sequential:
    model = nn.Sequential(nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 2))
    with torch.no_grad():  # the ReLU passes x0 + x1 > 0 only
        model[0].weight.copy_(torch.tensor([[1.0, 1.0]]))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        model[2].bias.zero_()
    return model.eval()


def test_two_dead_samples_of_the_dry_run_do_not_speak_for_the_probe():
    # the first 2 samples: ReLU off (Saliency 0), yet do(x_0 := 0) turns it on (a causal effect); the others pass it
    x = torch.tensor([[-1.0, 0.5], [-0.6, 0.3], [1.0, 2.0], [0.5, 0.3], [2.0, -1.0]])
    audit = CaptumBaseline(methods=("Saliency",), target=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*gives exactly 0 in every probe sample", category=UserWarning)
        audit.dry_run(_model(), Probe(x))
        result = audit.run(_model(), Probe(x))
    assert bool((result.vectors["mean_abs/Saliency"] > 0).all())  # |d out_0 / d x_j| = 1 where the ReLU passes


def test_a_group_no_gradient_reaches_in_any_sample_still_warns():
    x = torch.tensor([[-1.0, -2.0], [-0.5, -1.0], [-1.0, 0.5]])
    with pytest.warns(UserWarning, match=r"Saliency gives exactly 0 in every probe sample"):
        CaptumBaseline(methods=("Saliency",), target=0).run(_model(), Probe(x))
