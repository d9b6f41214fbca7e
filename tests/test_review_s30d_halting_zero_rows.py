"""bc06c330 made unit_effects say that a later call of the layer returned fewer rows (a block repeated on the rows not
yet halted) only where that call returned at least one row: a halting loop without a `break` calls its block on no
rows once every row has halted, and the refusal went on blaming "a module shared across inputs of other shapes (rows
flattened into the batch)" with no word of the nn.Identity site that works."""

import pytest
import torch

from lightning_causal.causal import unit_effects
from tests.helpers.halting import HaltingLoop


class HaltAll(HaltingLoop):
    """``block`` on every row, then on the rows still running, three times, with no `break`: every row halts after
    the first step (feature 0 of tanh is above -5), so the second and third calls get no row."""

    def __init__(self) -> None:
        super().__init__(lambda h, _x: h[:, 0] < -5, steps=3, stop=False)


def test_the_premise_the_block_runs_on_every_row_then_on_none():
    seen: list[int] = []
    model = HaltAll()
    model.block.register_forward_hook(lambda _m, _a, out: seen.append(out.shape[0]))
    model(torch.randn(4, 3))
    assert seen == [4, 0, 0]


def test_a_later_call_on_no_row_is_said_to_be_one_on_fewer_rows():
    with pytest.raises(ValueError, match=r"a later call returned \[0, 3\] \(3 units on dimension 1\): 0 rows where its first "
                                         r"call returned \d+: a module called again on some of its rows only .*`nn.Identity`") as err:
        unit_effects(HaltAll(), torch.randn(4, 3), "block", unit_dim=-1, target=0)
    assert "shared across inputs of other shapes" not in str(err.value)
