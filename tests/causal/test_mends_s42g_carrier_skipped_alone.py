"""carrier_unit_effects(max_batch_size=1) on a model whose sample run alone skips the carrier layer (a branch on the
batch: the probe's passes, both groups together, run it once) was refused in the words of activations_alone, of models
drawing random numbers in eval mode and of `layers=`, which carrier_unit_effects lacks. It is now refused in
repeated_carrier_error's words: the layer does not run on sample k run alone."""

import pytest
import torch
from torch import nn

from lightning_causal import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip, carrier_unit_effects


class Skip(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.inp, self.mid, self.act, self.head = nn.Linear(4, 4), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)

    def forward(self, x):
        h = self.inp(x)
        if not bool((x[:, 0] > 0.5).all()):  # a batch of group 1 alone skips mid
            h = self.mid(h)
        return self.head(self.act(h))


def _x():
    x = torch.randn(8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x[:, 0] = (torch.arange(8) % 2).double()
    return x


def test_a_sample_alone_skipping_the_carrier_layer_is_refused_in_the_carriers_words():
    model = Skip().double().eval()
    with pytest.raises(ValueError, match=r"'mid' to run once per forward pass for its carrier units, but it does not "
                                         r"run on sample 1 run alone \(max_batch_size=1\)") as err:
        carrier_unit_effects(model, _x(), AttributeFlip(0), "mid", target=1, max_batch_size=1)
    assert "layers=" not in str(err.value)


def test_fairness_audit_carriers_alone_give_the_same_words():
    model = Skip().double().eval()
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"does not run on sample 1 run alone"):
        FairnessAudit(AttributeFlip(0), layers=["mid"], target=1).run(model, Probe(_x()), max_batch_size=1)



class Depth(Skip):
    """Stochastic depth that ignores self.training: skips mid at random, in eval mode too."""

    def forward(self, x):
        h = self.inp(x)
        if torch.rand(()) < 0.7:
            h = self.mid(h)
        return self.head(self.act(h))


def test_a_layer_skipped_at_random_is_named_a_random_reading_too():
    """A model drawing random numbers in eval mode that skips the carrier layer at random was told only that it is a
    branch (mends_s42h, final_read_E F4): the words name the random reading and its way out too."""
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"does not run on sample \d+ run alone") as err:
        carrier_unit_effects(Depth().double().eval(), _x(), AttributeFlip(0), "mid", target=1, max_batch_size=1)
    assert "draws random numbers in eval mode and skips 'mid' at random" in str(err.value)
    assert "make its forward deterministic in eval mode" in str(err.value) and "layers=" not in str(err.value)
