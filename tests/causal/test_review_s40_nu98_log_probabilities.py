"""Review of cbd8394a (the warning on a model's own log-probabilities). Its test of a row's logsumexp allowed
``tol * K``: a float32 model of 1000 outputs at most 0 (an energy model's ``-relu``: 0 at its class, -10 elsewhere,
logsumexp 0.044) was taken for log-probabilities and warned as one. And its text holds the count of confident samples,
which changes between a fit's audit epochs: the callback, which shows each text once a fit, showed it again at every
audit epoch whose count changed (30 times in a 10-audit fit of 3 audits)."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.callbacks._warnings import WarningsOncePerFit
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.batching import kinds_about


class Energy(nn.Module):
    """Scores ``-relu(W x)`` of 1000 classes: 0 at the class of one-hot input ``i``, -10 at the others (not
    log-probabilities: their softmax gives the class 0.96, not 1)."""

    def __init__(self, height: float = 10.0) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 1000, bias=False)
        with torch.no_grad():
            self.lin.weight.fill_(height)
            self.lin.weight[torch.arange(4), torch.arange(4)] = -1.0

    def forward(self, x):
        return -torch.relu(self.lin(x))


def _count(fn) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return sum("returns log-probabilities" in str(w.message) for w in caught)


def test_scores_at_most_zero_of_many_classes_are_no_log_probabilities():
    assert _count(lambda: input_effects(Energy().eval(), torch.eye(4))) == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_log_softmax_of_many_classes_still_warned_in_every_dtype(dtype):
    net = nn.Sequential(Energy(20.0), nn.LogSoftmax(1)).to(dtype).eval()  # margin 20 over 999: p = 1 - 2e-6 a row
    assert _count(lambda: input_effects(net, torch.eye(4, dtype=dtype))) == 1


def test_the_callback_shows_it_once_a_fit_per_audit_though_its_count_changes():
    once = WarningsOncePerFit()
    nets = [nn.Sequential(nn.Linear(2, 2), nn.LogSoftmax(1)).eval() for _ in range(2)]
    with torch.no_grad():
        for net, margin in zip(nets, (8.0, 1.0)):  # 4 then 2 of the 4 samples at p >= 0.99
            net[0].weight.copy_(torch.tensor([[margin, 0.0], [0.0, 0.0]]))
            net[0].bias.zero_()
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [6.0, 0.0], [8.0, 0.0]])
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        for net in nets:  # two audit epochs of one audit
            with once.collect(), kinds_about("Audit 'effects'"):
                input_effects(net, x)
    texts = [str(w.message) for w in shown if "returns log-probabilities" in str(w.message)]
    assert len(texts) == 1 and "4 of 4 samples" in texts[0]


def test_the_bound_said_is_log_k_not_that_of_two_classes():
    """A class that stays the most probable of K keeps p >= 1/K: its log-probability moves by up to log K (6.91 of 1000
    classes), not 0.7, which holds of two classes only."""
    net = nn.Sequential(Energy(20.0), nn.LogSoftmax(1)).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        input_effects(net, torch.eye(4))
    (text,) = [str(w.message) for w in caught if "returns log-probabilities" in str(w.message)]
    assert "by less than log 1000 = 6.91" in text and "0.7," not in text
