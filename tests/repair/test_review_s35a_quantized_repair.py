"""Review of c05592e6 (an int8 quantize_dynamic model refused): the callback refused it at set-up, CausalRepairModule
only inside its first training_step, as a ValueError from a term's estimator in the middle of fit; it is refused when
built, as a MisconfigurationException naming the layers and the ways out."""

import warnings

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import AttributeFlip, CausalRepairModule, CounterfactualFairnessTerm


class _LoRAOnInt8(nn.Module):
    """A float low-rank adapter trained around a frozen int8 base (quantize_dynamic)."""

    def __init__(self) -> None:
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.base = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.Linear(6, 8)), {nn.Linear}, dtype=torch.qint8)[0]
        self.lora_A = nn.Parameter(torch.full((2, 6), 0.1))
        self.lora_B = nn.Parameter(torch.zeros(8, 2))
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(torch.relu(self.base(x) + x @ self.lora_A.t() @ self.lora_B.t()))


def test_the_repair_module_refuses_an_int8_base_when_built_not_in_its_first_training_step():
    with pytest.raises(MisconfigurationException, match=r"dynamically quantized layers \('base'; .*dequantize"):
        CausalRepairModule(_LoRAOnInt8(), [CounterfactualFairnessTerm(AttributeFlip(3))])
