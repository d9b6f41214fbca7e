"""A recurrent layer run on a ``PackedSequence`` (a GRU-D or any padded-sequence model that packs inside ``forward``)
returns ``(PackedSequence, h_n)``, no tensor of one row per sample. The layer map's default layers (every leaf layer
with parameters) took it and the map failed with a ``TypeError`` ("... but got tuple"), in ``LayerMapAudit()`` and at the
callback's set-up; it is now left out of the default layers, with a warning and the map's ``meta['left_out']`` naming
why. Named (``layers=[...]``, ``CausalGraphAudit``), the error says what the tuple holds and what to name instead."""

import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from lightning_causal.audits import CausalGraphAudit, LayerMapAudit, Probe
from lightning_causal.causal import layer_causal_map
from lightning_causal.causal.structure.default_layers import NO_TENSOR


class PackedGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(3, 8)
        self.rnn = nn.GRU(8, 8, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(self.inp(x), lengths, batch_first=True, enforce_sorted=False)
        return self.head(self.rnn(packed)[1][-1])


def _probe():
    torch.manual_seed(0)
    return PackedGRU().eval(), torch.randn(6, 5, 3), torch.tensor([5, 3, 4, 5, 2, 5])


def test_default_layers_leave_a_packed_recurrent_layer_out():
    model, x, lengths = _probe()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lm = layer_causal_map(model, x, additional_forward_args={"lengths": lengths})
    assert lm.layers == ["inp", "head"] and lm.meta["left_out"] == {"rnn": NO_TENSOR}
    assert [str(w.message) for w in caught if "PackedSequence" in str(w.message) and "'rnn'" in str(w.message)]
    assert not [w for w in caught if "dead ReLU" in str(w.message)]  # not told as a layer the output does not read
    result = LayerMapAudit().run(model, Probe(x, None, {"lengths": lengths}))
    assert any("rnn" in note and "PackedSequence" in note for note in result.meta["notes"])


def test_a_named_packed_layer_is_refused_saying_what_to_name():
    model, x, lengths = _probe()
    with pytest.raises(TypeError, match=r"got tuple \(PackedSequence, Tensor\): it returns a PackedSequence.*'head:input'"):
        CausalGraphAudit(["rnn"]).run(model, Probe(x, None, {"lengths": lengths}))
