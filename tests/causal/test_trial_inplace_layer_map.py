"""Trial (inplace): the layer causal map of a model with a module called before and after another."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import layer_causal_map


class SharedAround(nn.Module):
    """`shared` runs twice before `mid` and once after it."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.shared, self.mid, self.out = nn.Linear(4, 5), nn.Linear(5, 5), nn.Linear(5, 5), nn.Linear(5, 2)

    def forward(self, x):
        a = torch.tanh(self.shared(torch.tanh(self.shared(torch.tanh(self.inp(x))))))
        return self.out(torch.tanh(self.shared(torch.tanh(self.mid(a)))) + a)


def test_a_module_called_several_times_is_placed_at_the_call_the_map_reads():
    # the map reads a module's last call (capture keeps it) but placed the module in the chain at
    # its first call: `shared`, read after `mid`, was drawn before it ('inp -> shared -> mid'), and
    # the merge and the gains compared it with the wrong neighbours
    torch.manual_seed(0)
    model = SharedAround().double()
    x = torch.randn(8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with pytest.warns(UserWarning, match=r"at its last call and places it there.*'shared' runs 3 times per forward pass") as seen:
        result = layer_causal_map(model, x, torch.arange(4), ["inp", "mid", "shared"], threshold=1.0)
    assert len(seen) == 1  # said once, not by every capture of the map
    assert result.layers == ["inp", "mid", "shared"]
    assert list(result.nodes) == ["<input>", "inp", "mid", "shared", "<output>"]


class PerSampleHead(nn.Module):
    """The head is called once per sample in a Python loop."""

    def __init__(self) -> None:
        super().__init__()
        self.body, self.head = nn.Linear(4, 5), nn.Linear(5, 2)

    def forward(self, x):
        h = torch.tanh(self.body(x))
        return torch.stack([self.head(h[i]) for i in range(h.shape[0])])


def test_a_module_called_per_sample_in_a_loop_is_named_as_such():
    # the refusal explained a [2] output for 6 samples by batch_first=False layers and experts only
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"'head' returned \[2\] for 6 samples at each of its 6 calls per pass \(a module "
                                         r"called per sample or per step in a loop\)"):
        layer_causal_map(PerSampleHead(), x, torch.arange(4), ["body", "head"])
