"""Ghost BatchNorm inside an activation-checkpointed segment: the repair terms keep the joint pass (the backward's
recomputation would lose the replay's pairing), and say so once per model with a way out that works."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lightning_causal import BackdoorSuppressionTerm, CounterfactualFairnessTerm, Trigger
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair.paired_rows import CHECKPOINTED_SPLIT
from tests.repair.test_newuser120_ghost_batchnorm_pairs import GhostBN, _rows


class _Net(nn.Module):
    """Column 3 is never read: a fairness term on it is 0 where each row is paired with its twin."""

    def __init__(self, reentrant: bool | None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.reentrant = reentrant
        self.fc, self.gbn, self.head = nn.Linear(4, 8), GhostBN(8), nn.Linear(8, 2)
        self.register_buffer("keep", torch.tensor([1.0, 1.0, 1.0, 0.0]))

    def block(self, h: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.gbn(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x * self.keep)
        if self.reentrant is None:
            return self.head(self.block(h))
        return self.head(checkpoint(self.block, h, use_reentrant=self.reentrant))


def _steps(model: nn.Module, n: int = 2) -> tuple[list[float], list[str]]:
    x, y = _rows(40)
    term, values = CounterfactualFairnessTerm(AttributeFlip(3)), []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(n):
            loss = term.loss(model, x, y)
            loss.backward()
            values.append(float(loss))
    return values, [str(w.message) for w in caught]


@pytest.mark.parametrize("reentrant", [False, True])
def test_checkpointed_ghost_bn_keeps_the_joint_pass_warned_once(reentrant: bool) -> None:
    values, messages = _steps(_Net(reentrant).train())
    assert min(values) > 1e-3  # the unpaired joint pass: the term measures the virtual batches, not the column
    assert messages.count(CHECKPOINTED_SPLIT) == 1, messages
    assert "turn checkpointing off" in CHECKPOINTED_SPLIT and "eval mode" in CHECKPOINTED_SPLIT


def test_the_ways_out_pair_the_rows_unwarned() -> None:
    values, messages = _steps(_Net(None).train())  # ghost BatchNorm outside the segment
    assert values == [0.0, 0.0] and CHECKPOINTED_SPLIT not in messages
    model = _Net(False).train()
    model.gbn.bn.eval()  # running statistics: no virtual batches
    values, messages = _steps(model)
    assert values == [0.0, 0.0] and not any("BatchNorm" in m for m in messages), messages


def test_the_backdoor_term_is_warned_too() -> None:
    x, y = _rows(40)
    trigger = Trigger(mask=torch.tensor([0.0, 0.0, 0.0, 1.0]), pattern=torch.tensor([0.0, 0.0, 0.0, 5.0]), target=1)
    term = BackdoorSuppressionTerm(trigger, suspects={"gbn": list(range(8))}, path="units", distill_weight=0.0,
                                   augment=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        term.loss(_Net(False).train(), x, y)
    assert [str(w.message) for w in caught].count(CHECKPOINTED_SPLIT) == 1
