"""A default layer left out of the layer map is noted with what it returned "for a pass of R intervened rows". The
note was written inside the pass, before the pass finished: a pass that then ran the device out of memory (and ran
again in halves) left the note of its own rows, which never counted, and its halves no longer looked at the layer.
The note (in the warning that names the layers left out) now describes a pass that ran (task fixes_engine_s24,
item 6)."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal.causal import layer_causal_map
from lightning_causal.causal.structure import layer_trace
from tests.helpers.out_of_memory import failing_above


class _Branch(nn.Module):
    """``extra`` runs only on batches none of whose rows has feature 0 at 0 (the baseline): intervened passes of
    group 0 skip it. Its weights are 0, so every sample's output is its own (the branch changes no number)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.extra, self.head = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)
        with torch.no_grad():
            self.extra.weight.zero_(), self.extra.bias.zero_()

    def forward(self, x):
        h = torch.relu(self.a(x))
        if bool((x[:, 0] != 0).all()):
            h = h + self.extra(x)
        return self.head(h)


def _left_out(monkeypatch, limit: int | None) -> str:
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0)).double() + 3.0  # no feature at 0
    model = _Branch().double().eval()
    if limit is not None:  # the pass's last step runs out of memory above `limit` rows, after the layers were read
        oom, _ = failing_above(limit)
        real = layer_trace.input_change

        def input_change(x, xa=None):
            if xa is not None:
                oom(torch.arange(x.shape[0]))
            return real(x, xa)

        monkeypatch.setattr(layer_trace, "input_change", input_change)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lm = layer_causal_map(model, x, max_batch_size=8)
    assert "extra" in lm.meta["left_out"] and "extra" not in lm.layers
    (note,) = [str(w.message) for w in caught if "leaves the layers ['extra']" in str(w.message)]
    return note


def test_the_note_of_a_dropped_layer_describes_the_pass_that_ran(monkeypatch):
    assert "'extra' did not run for a pass of 8 intervened rows" in _left_out(monkeypatch, None)
    assert "'extra' did not run for a pass of 4 intervened rows" in _left_out(monkeypatch, 4)  # was: of 8, which failed
