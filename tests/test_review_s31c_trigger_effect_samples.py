"""review_s31c (of 28f8ad85): ``trigger_effect`` checks that the model treats rows independently on the batch it runs,
its samples' clean rows and their stamped copies together. Its refusal of a model normalising over the batch counted
them together ("in the batch of 16" for 8 samples), and of one sample it checked the clean row and its stamped copy
run alone, which is the very batch of the pass: no difference, and the coupled effect came back silently. The check
now takes the clean rows, the user's samples: the message counts them, and one sample runs twice alone against its
pass beside its copy."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal.backdoor.triggers import Trigger, trigger_effect

X = torch.rand(8, 1, 2, 2, generator=torch.Generator().manual_seed(0))
TRIGGER = Trigger(torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]), torch.ones(1, 2, 2), target=1)


def _net(norm: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 6), norm, nn.ReLU(), nn.Linear(6, 3)).eval()


@pytest.mark.parametrize("n", [8, 2, 1])
def test_the_refusal_counts_the_users_samples_and_one_sample_is_checked(n: int) -> None:
    model = _net(nn.BatchNorm1d(6, track_running_stats=False))
    with pytest.raises(ValueError, match=rf"run alone differ from their outputs in the batch of {n} .*track_running_stats=False"
                                         r".*trigger_effect runs rows"):  # before: 'batch of 16', 'of 4'; of 1 no error
        trigger_effect(model, X[:n], TRIGGER)


def test_one_sample_of_a_per_sample_model_runs_as_before() -> None:
    model = _net(nn.LayerNorm(6))
    effect = trigger_effect(model, X[:1], TRIGGER)
    with torch.no_grad():  # the target logit stamped minus clean, by hand
        hand = model(TRIGGER.apply(X[:1]))[:, 1] - model(X[:1])[:, 1]
    torch.testing.assert_close(effect, hand)
