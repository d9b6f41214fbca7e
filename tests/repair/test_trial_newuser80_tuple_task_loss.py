"""A heteroscedastic regressor returning `(mean, log_var)`, fine-tuned by CausalRepairModule on its Gaussian NLL without
`output=`, stopped with the audits' message: 'pass `output=` ... e.g. `output=0` (one audit per output)'. Followed,
`output=0` hands the task loss the mean alone, which no NLL can be computed from. The message now says that the
task loss takes one tensor and names stacking the tensors it needs together, each term reading its own output."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal import CausalRepairModule
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm


class MeanLogVar(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.fc(x)
        return out[:, 0], out[:, 1]


def test_a_tuple_without_output_names_the_stacked_task_loss() -> None:
    term = CounterfactualFairnessTerm(AttributeFlip(3), output=0, distance="logit")
    repair = CausalRepairModule(MeanLogVar(), [term], task_loss=lambda o, y: F.mse_loss(o, y))
    with pytest.raises(TypeError, match=r"task loss takes one tensor.*torch\.stack\(out, -1\)") as info:
        repair.model_outputs(torch.randn(8, 4))
    assert "`if self.training: return logits, aux`" in str(info.value)  # the auxiliary-head way stays named


def test_the_stacked_tensors_reach_the_task_loss() -> None:
    seen = []
    nll = lambda o, y: seen.append(o.shape) or F.gaussian_nll_loss(o[..., 0], y, o[..., 1].exp())  # noqa: E731
    repair = CausalRepairModule(MeanLogVar(), [], task_loss=nll, output=lambda out: torch.stack(out, -1))
    loss = repair.task_step((torch.randn(8, 4), torch.randn(8)), 0)
    assert seen == [torch.Size([8, 2])] and torch.isfinite(loss)
