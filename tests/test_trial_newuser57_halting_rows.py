"""Adaptive computation that repeats a block on the rows that have not halted yet (the block is called on all rows,
then on fewer): `unit_effects` refused it saying the block was "a module shared across inputs of other shapes (rows
flattened into the batch)", and the layer map said the block returned its last call's rows "at each of its 5 calls per
pass", though its first call returned every sample. Both now say that a later call ran on some rows only."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import Zero, intervene, layer_causal_map, unit_effects
from tests.helpers.halting import HaltingLoop, eye_plus_first


class HaltingRows(HaltingLoop):
    """``block`` runs on every row, then again on the rows whose halting score is still low (at most 5 times):
    row 0 halts after one step, row 1 after two, rows 2 and 3 run all five."""

    def __init__(self) -> None:
        super().__init__(lambda h, x: h[:, 0] < 0.75 + x[:, 2], steps=5)  # halts once feature 0 passes the row's threshold
        eye_plus_first(self.block)


X = torch.tensor([[2.0, 0.5, -1.5], [0.0, 0.2, 0.1], [0.0, -0.3, 5.0], [1.0, 0.1, 5.0]])


def _calls(model: nn.Module, x: torch.Tensor) -> list[int]:
    rows: list[int] = []
    handle = model.block.register_forward_hook(lambda _m, _a, out: rows.append(out.shape[0]))
    try:
        model(x)
    finally:
        handle.remove()
    return rows


def test_the_model_calls_its_block_on_fewer_rows_at_later_steps():
    assert _calls(HaltingRows(), X) == [4, 3, 2, 2, 2]  # the premise of the messages below
    assert _calls(HaltingRows(), X[:2]) == [2, 1]


def test_unit_effects_says_the_block_ran_on_some_rows_only():
    with pytest.raises(ValueError, match=r"returned \[\d+, 3\] \(3 units on dimension 1\): \d+ rows where its first call "
                                         r"returned \d+: a module called again on some of its rows only \(a block repeated on the "
                                         r"rows not yet halted") as err:
        unit_effects(HaltingRows(), X, "block", unit_dim=-1, target=0)
    assert "shared across inputs of other shapes" not in str(err.value)


def test_the_way_out_the_message_names_gives_the_effects_of_a_hand_do():
    """The site the message asks for: an nn.Identity applied where the rows are put back together, at every step
    (``HaltingLoop.step``); its effects are those of a forward hook setting the unit at every call, one sample at a time."""
    torch.manual_seed(0)
    model = HaltingRows().eval()
    effects = unit_effects(model, X, "step", unit_dim=-1, target=1)
    with torch.no_grad():
        hand = torch.stack([torch.stack([model(X[i:i + 1])[0, 1] - _with(model, X[i:i + 1], u) for u in range(3)])
                            for i in range(4)])
    torch.testing.assert_close(effects, hand)


def _with(model: nn.Module, x: torch.Tensor, unit: int) -> torch.Tensor:
    with intervene(model, {"step": Zero(units=[unit])}):
        return model(x)[0, 1]


def test_the_layer_map_says_the_last_call_ran_on_fewer_rows_than_the_first():
    with pytest.raises(ValueError, match=r"'block' returned \[1, 3\] for 2 samples at the last of its 2 calls per pass, 1 rows "
                                         r"where its first call returned 2: a module called again on some of its rows only") as err:
        layer_causal_map(HaltingRows(), X[:2], torch.arange(3), ["block", "head"])
    assert "at each of its" not in str(err.value)
