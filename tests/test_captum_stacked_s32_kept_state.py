"""A forward that keeps a numpy array or a set and updates it in place (a running mean ``self.mean += ...`` on
``np.zeros(F)``, ``self.seen.add(rows)``, an array in a dict ``self.stats["m"] += ...``) was left holding the audit's
passes' values after ``input_effects``, Captum's ``attribute`` or the callback's audits (documented as not covered: a
set, an array of more dimensions); 0-d arrays only were copied. ``keep_attributes(numbers=True)`` (``audit_mode``) now
copies arrays up to ``KEPT_ARRAY_BYTES`` and sets up to ``KEPT_SET_ITEMS`` items, also held in a dict, and puts them
back, reassigned or updated in place."""

import numpy as np
import pytest
import torch
from torch import nn

from lightning_causal.baselines.captum_methods import attribute
from lightning_causal.causal.effects.input_effects import input_effects
from lightning_causal.causal.engine.kept_attributes import (
    KEPT_ARRAY_BYTES,
    KEPT_SET_ITEMS,
    keep_attributes,
)


class Tracking(nn.Module):
    """A linear model whose forward keeps statistics of what it saw in numpy arrays and sets."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.mean = np.zeros(3)  # updated in place
        self.hist = np.ones((2, 3))  # reassigned
        self.seen = {4}  # updated in place
        self.tags = {"train"}  # reassigned
        self.stats = {"m": np.zeros(3), "z": np.array(0.0), "ids": set()}  # in place, in a dict

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.detach().double().numpy()
        self.mean += rows.mean(0)
        self.hist = self.hist * 0.5
        self.seen.add(x.shape[0])
        self.tags = self.tags | {"audit"}
        self.stats["m"] += rows.sum(0)
        self.stats["z"] += 1.0
        self.stats["ids"].add(x.shape[0])
        return self.lin(x)


def state(m: Tracking) -> tuple:
    return (m.mean.tolist(), m.hist.tolist(), sorted(m.seen), sorted(m.tags), m.stats["m"].tolist(), float(m.stats["z"]),
            sorted(m.stats["ids"]))


BEFORE = ([0.0, 0.0, 0.0], [[1.0] * 3] * 2, [4], ["train"], [0.0, 0.0, 0.0], 0.0, [])


@pytest.mark.parametrize("run", [
    lambda m, x: input_effects(m, x, target=0),
    lambda m, x: attribute(m, x, "IntegratedGradients", target=0),
    lambda m, x: attribute(m, x, "FeatureAblation", target=0, max_batch_size=6),
], ids=["input_effects", "IntegratedGradients", "FeatureAblation"])
def test_arrays_and_sets_a_forward_updates_are_put_back_after_an_audit(run):
    torch.manual_seed(0)
    model, x = Tracking(), torch.randn(6, 3)
    assert state(model) == BEFORE
    ids = (id(model.mean), id(model.hist), id(model.seen), id(model.tags), id(model.stats["m"]))
    run(model, x)
    assert state(model) == BEFORE
    assert (id(model.mean), id(model.hist), id(model.seen), id(model.tags), id(model.stats["m"])) == ids  # the very objects
    model(x)  # the model's own passes still update them
    assert state(model)[2] == [4, 6] and model.stats["z"] == 1.0 and np.allclose(model.mean, x.double().numpy().mean(0))


def test_the_copies_are_bounded():
    m = nn.Linear(1, 1)
    m.table = np.zeros(KEPT_ARRAY_BYTES // 8 + 1)  # one float64 past the bound: not copied at every audit pass
    m.small = np.zeros(KEPT_ARRAY_BYTES // 8)
    m.ids, m.many = set(range(3)), set(range(KEPT_SET_ITEMS + 1))
    m.frozen = np.zeros(3)
    m.frozen.flags.writeable = False  # cannot be updated in place
    kept = keep_attributes(m, numbers=True)
    assert sorted(len(v) for v, _ in kept.arrays) == [3, KEPT_ARRAY_BYTES // 8]
    m.small += 1
    m.ids.add(7)
    kept.restore()
    assert float(m.small.max()) == 0.0 and m.ids == {0, 1, 2}
