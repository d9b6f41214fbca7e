"""bc06c330 made the layer map say that a block repeated on the rows not yet halted returned fewer rows at its last
call than at its first, which returned every sample, reading the first call's rows from its output only where that
output was a tensor: a block returning ``(state, halting score)``, as adaptive-computation blocks do, was still said to
return one row "at each of its 2 calls per pass (a module called per sample or per step in a loop)", though its first
call returned every sample. The rows are now read from the tensor capture reads, element 0 of a tuple."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import layer_causal_map
from tests.helpers.halting import HaltingLoop, eye_plus_first


class Block(nn.Module):
    """``tanh(h + e0)`` and its first feature as a halting score, returned as a tuple."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = eye_plus_first(nn.Linear(3, 3))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = torch.tanh(self.lin(h))
        return out, out[:, :1]


class HaltingTuple(HaltingLoop):
    """``block`` on every row, then on the rows still running: row 0 of ``X`` halts after one step, row 1 after two."""

    def __init__(self) -> None:
        super().__init__(lambda h, x: h[:, 0] < 0.75 + x[:, 2], steps=5, block=Block(), squash=lambda h: h)


X = torch.tensor([[2.0, 0.5, -1.5], [0.0, 0.2, 0.1]])


def test_the_premise_the_block_returns_a_tuple_on_2_rows_then_1():
    seen: list[int] = []
    model = HaltingTuple()
    model.block.register_forward_hook(lambda _m, _a, out: seen.append(out[0].shape[0]))
    model(X)
    assert seen == [2, 1]


def test_the_layer_map_says_the_tuple_block_s_first_call_returned_every_sample():
    with pytest.raises(ValueError, match=r"'block' returned \[1, 3\] for 2 samples at the last of its 2 calls per pass, 1 rows "
                                         r"where its first call returned 2: a module called again on some of its rows only") as err:
        layer_causal_map(HaltingTuple(), X, torch.arange(3), ["block", "head"])
    assert "at each of its" not in str(err.value)
