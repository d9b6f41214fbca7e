"""The batch-dependence check's written-state rule beside random draws refused a model that keeps a table rebuilt when
the batch size changes (``if self.scale.shape[0] != len(x): self.scale = ...``) beside MC dropout, and named it beside a
statistic truly read: the table, written by the pass of two rows alone, was set to other values of the pass's own shape
and read. A tensor reassigned to another shape than the probe's pass left, which the rows run from one snapshot with it
set back to that tensor give their outputs again, is one the forward builds from its batch: not refused, not named. A
cache that grows at every call and is read (set back, a shorter one) is still refused (task leftovers_s45a)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import input_effects


class _Net(nn.Module):
    """``kind``: "keyed" a scale table rebuilt where the batch size changes (``cached=False``: made at every call, the
    reference); "keyed_norm" that and a running mean read; "growing" a cache of the batches' means, grown at every call
    and read. MC dropout kept on in every kind."""

    def __init__(self, kind: str, cached: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.kind, self.cached, self.l1, self.l2 = kind, cached, nn.Linear(3, 16), nn.Linear(16, 2)
        self.scale, self.mean, self.seen = torch.ones(1, 16), torch.zeros(3), torch.zeros(1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.cached:
            scale = torch.linspace(1.0, 2.0, 16).expand(x.shape[0], 16)
        else:
            if self.scale.shape[0] != x.shape[0]:
                self.scale = torch.linspace(1.0, 2.0, 16).expand(x.shape[0], 16).clone()
            scale = self.scale
        if self.kind == "keyed_norm":
            self.mean = (0.9 * self.mean + 0.1 * x.mean(0)).detach()
            x = x - self.mean
        if self.kind == "growing":
            self.seen = torch.cat([self.seen, x.mean(0, keepdim=True).detach()])
            x = x - self.seen.mean(0)
        return self.l2(F.dropout(self.l1(x).relu() * scale, 0.1, training=True))


def _x() -> torch.Tensor:
    return torch.randn(24, 3, generator=torch.Generator().manual_seed(1))


@pytest.mark.filterwarnings("ignore:The model draws random numbers")
def test_a_table_rebuilt_on_the_batch_size_passes_with_the_effects_of_one_made_at_every_call() -> None:
    torch.manual_seed(5)
    got = input_effects(_Net("keyed").eval(), _x(), target=0)
    torch.manual_seed(5)
    reference = input_effects(_Net("keyed", cached=False).eval(), _x(), target=0)
    assert got.shape == (24, 3) and torch.equal(got, reference)


@pytest.mark.parametrize(("kind", "named"), [("keyed_norm", "mean"), ("growing", "seen")])
def test_a_statistic_or_a_growing_cache_read_is_still_refused_naming_it_alone(kind: str, named: str) -> None:
    with pytest.raises(ValueError, match=rf"wrote floating tensors of its own \({named}\) in a pass of probe samples "
                                         r"\[0, 1\] alone, in eval mode, and reads them beside the random numbers"):
        input_effects(_Net(kind).eval(), _x(), target=0)
