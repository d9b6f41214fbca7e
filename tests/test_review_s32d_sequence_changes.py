"""newuser63's leftover (b), review s32d: CounterfactualAudit's table gave a sequence's changes as flat indices only
(``changed_elements`` 82 of a sample [32, 4] is step 20 of feature 2), with no ``changes`` in words as tabular inputs
have, so neither the table nor the text summary said which step changed. Sequences [N, T, F] and [N, C, T] now get
``changes`` by step and feature (channel); ``changed_elements`` keep their flat indices (the point is rebuilt from
them)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit, Probe
from lightning_causal.reporting.summary import _counterfactual_row


class _OneElement(nn.Module):
    """Class 1 where x[:, i, j] > 0.5: logits (0, 10 (x[:, i, j] - 0.5))."""

    def __init__(self, i: int, j: int) -> None:
        super().__init__()
        self.i, self.j = i, j

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = 10 * (x[:, self.i, self.j] - 0.5)
        return torch.stack([torch.zeros_like(v), v], 1)


@pytest.mark.parametrize(("shape", "at", "words"), [((32, 4), (20, 2), "step 20 of feature 2: +"),
                                                    ((4, 32), (2, 20), "step 20 of channel 2: +")])
def test_a_sequences_change_is_said_by_step(shape: tuple[int, int], at: tuple[int, int], words: str) -> None:
    torch.manual_seed(0)
    x = torch.rand(6, *shape) * 0.4  # every sample below 0.5 at the element: predicted 0, labelled 1
    r = CounterfactualAudit(max_samples=2).run(_OneElement(*at), Probe(x, torch.ones(6, dtype=torch.long)))
    row = r.tables["counterfactuals"][0]
    assert row["success"] and row["changed_elements"] == [at[0] * shape[1] + at[1]]  # the flat index, as before
    change = row["counterfactual_values"][0] - row["original_values"][0]
    assert row["changes"] == f"{words}{change:.3g}"
    assert _counterfactual_row(row, None) == f"#0 0 → 1: {words}{change:.3g}"  # the text summary's line


def test_the_three_largest_changes_by_hand() -> None:
    from lightning_causal.audits.counterfactual import _step_changes

    d = torch.zeros(5, 2)  # [T, F]
    d[1, 0], d[3, 1], d[4, 0], d[0, 1] = 0.1, -0.5, 0.3, 0.05
    assert _step_changes(d, "last") == "step 3 of feature 1: -0.5, step 4 of feature 0: +0.3, step 1 of feature 0: +0.1"
    assert _step_changes(d.T.contiguous(), "first") == "step 3 of channel 1: -0.5, step 4 of channel 0: +0.3, step 1 of channel 0: +0.1"
    assert _step_changes(torch.zeros(5, 2), "last") == ""
