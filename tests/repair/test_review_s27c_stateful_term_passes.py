"""A model found to carry a state across batches runs unfused, each term's passes after the task's: those passes left
a state kept in a registered buffer and updated in place (``self.h.copy_(h)``, a fixed-size stream state) as the term's
rows set it, not as the task's step did, and a step counter (a buffer, a number) counted each term's pass too
(review_s27c of 4e372ed5, which put these back at the reading step only). A BatchNorm layer's running statistics, which
a plain unfused step updates with the terms' rows too, keep those updates."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal import CausalRepairModule
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm

N, F, H = 8, 4, 5


class _Streams(nn.Module):
    """``N`` streams whose state ``h`` is a registered buffer updated in place; a pass of more rows runs them ``N`` at
    a time from the same state; a step counter as a buffer and as a number; a BatchNorm layer in front."""

    def __init__(self) -> None:
        super().__init__()
        self.norm, self.cell, self.head = nn.BatchNorm1d(F), nn.GRUCell(F, H), nn.Linear(H, 2)
        self.register_buffer("h", torch.zeros(N, H))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.norm(x)
        h0 = self.h.clone()
        outs = [self.cell(z[i:i + N], h0) for i in range(0, x.shape[0], N)]
        if self.training:
            self.h.copy_(outs[-1].detach())
            self.steps += 1
            self.calls += 1
        return self.head(torch.cat(outs))


def _batch(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(N, F, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()
    return x, torch.randint(0, 2, (N,), generator=g)


def test_the_terms_passes_leave_an_in_place_state_and_a_counter_as_the_tasks_step_left_them() -> None:
    torch.manual_seed(0)
    model = _Streams()
    repair = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(0), weight=1.0)])
    seen: list[torch.Tensor] = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    g = torch.Generator().manual_seed(0)
    mean = torch.zeros(F)
    for step in range(3):
        x, y = _batch(g)
        with torch.no_grad():  # the task's pass on x from the state the last step left, by hand (batch statistics)
            z = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + model.norm.eps) * model.norm.weight + model.norm.bias
            expected = model.cell(z, model.h.clone())
        seen.clear()
        repair.objective((x, y), 0)
        assert repair._carried == (("h", (N, H)),)
        assert [s.shape[0] for s in seen] == [N, 2 * N]  # unfused: the task's rows, then the term's
        torch.testing.assert_close(model.h, expected)  # before: the term's last N rows' state
        assert int(model.steps) == step + 1 and model.calls == step + 1  # before: 2, 4, 6
        for rows in seen:  # the running mean takes every training pass's rows, the term's too, as unfused steps do
            mean = 0.9 * mean + 0.1 * rows.mean(0)
        torch.testing.assert_close(model.norm.running_mean, mean)


def test_a_batch_of_no_rows_is_no_divisor_of_a_state() -> None:
    """A step on a batch of 0 rows (a collate that drops every sample) of a model that sets a tensor attribute at each
    pass stopped in the state's reading with ZeroDivisionError ('integer modulo by zero'), naming nothing."""
    from lightning_causal.repair.carried_state import sized_by_batch

    assert sized_by_batch((4, 3), 0) is False  # before: ZeroDivisionError
    assert sized_by_batch((0, 3), 0) is True  # a state of the empty batch's 0 rows
    assert sized_by_batch((32, 5), 8) is True and sized_by_batch((12, 5), 8) is False
