"""``CausalRepairModule.unpack`` and ``model_outputs`` take and give a tuple of inputs for a model of several
inputs (``explain=``), as their docstrings say, but were typed ``Tensor``: the hints now say
``Tensor | tuple[Tensor, ...]`` (``unpack`` returns ``lightning_causal.batches.Unpacked``)."""

from __future__ import annotations

import typing

import torch
from torch import Tensor, nn

from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CausalRepairModule, CounterfactualFairnessTerm


class Sum(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1, bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[1.0, 10.0]]))

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.lin(a + b)


def test_unpack_and_model_outputs_take_a_tuple_of_inputs_as_typed():
    inputs_hint = Tensor | tuple[Tensor, ...]
    assert typing.get_args(typing.get_type_hints(CausalRepairModule.unpack)["return"])[0] == inputs_hint
    assert typing.get_type_hints(CausalRepairModule.model_outputs)["x"] == inputs_hint
    repair = CausalRepairModule(Sum(), [CounterfactualFairnessTerm(AttributeFlip(0))], explain=0)
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    x, y, args = repair.unpack(((a, b), torch.tensor([0])))
    assert isinstance(x, tuple) and x[0] is a and x[1] is b and args is None
    torch.testing.assert_close(repair.model_outputs(x), torch.tensor([[11.0]]))  # 1 * 1 + 10 * 1
