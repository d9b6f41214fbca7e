"""Final read of f7cea5dd (pre-existing): a loralib-style LoRA layer merges ``B @ A`` into its weight on
``train(False)`` (``self.weight.data += ...``, ``merged = True``) and takes it out on ``train(True)``. ``audit_mode`` and
the callback's ``no_trace`` put the modes back by the flag and ``merged`` back with the attributes, so the layer of a
model in train mode came back unmerged by its flag but merged in its weight: B @ A counted twice from then on (its
output off by the whole update after one audit). The parameters of a module writing its own ``train`` are kept now."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.callbacks._no_trace import no_trace
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.state import audit_mode


class LoRALinear(nn.Linear):
    """loralib.Linear's merging (microsoft/LoRA), replicated."""

    def __init__(self, i: int, o: int, r: int = 2) -> None:
        super().__init__(i, o)
        self.r, self.scaling, self.merged = r, 1.0, False
        self.lora_A, self.lora_B = nn.Parameter(torch.randn(r, i)), nn.Parameter(torch.randn(o, r))

    def train(self, mode: bool = True) -> LoRALinear:
        nn.Linear.train(self, mode)
        if mode and self.merged:
            self.weight.data -= self.lora_B @ self.lora_A * self.scaling
            self.merged = False
        elif not mode and not self.merged:
            self.weight.data += self.lora_B @ self.lora_A * self.scaling
            self.merged = True
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = nn.functional.linear(x, self.weight, self.bias)
        return out if self.merged else out + x @ self.lora_A.T @ self.lora_B.T * self.scaling


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(LoRALinear(4, 8), nn.ReLU(), nn.Linear(8, 3)).train()


def test_an_audit_leaves_a_lora_layer_in_train_mode_as_it_found_it():
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    for block in (audit_mode, no_trace):
        model = _model()
        state = {k: v.clone() for k, v in model.state_dict().items()}
        with torch.no_grad():
            before = model(x)
        with block(model):
            with torch.no_grad():
                merged = model(x)
        assert torch.allclose(merged, before, atol=1e-5)  # merged in eval mode: the same function
        assert model.training and model[0].training and not model[0].merged
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items()), block.__name__
        with torch.no_grad():
            assert torch.equal(model(x), before), block.__name__


def test_an_estimator_on_a_lora_model_in_train_mode_leaves_its_weights_bit_identical():
    model, x = _model(), torch.randn(6, 4, generator=torch.Generator().manual_seed(2))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    input_effects(model, x, target=0)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items()) and not model[0].merged


class WrappedLoRA(nn.Module):
    """A hand-written LoRA wrapping its layer (``self.base``, torch's own nn.Linear) and merging into its weight."""

    def __init__(self, i: int, o: int, r: int = 2) -> None:
        super().__init__()
        self.base, self.merged = nn.Linear(i, o), False
        self.lora_A, self.lora_B = nn.Parameter(torch.randn(r, i)), nn.Parameter(torch.randn(o, r))

    def train(self, mode: bool = True) -> WrappedLoRA:
        super().train(mode)
        if mode == self.merged:  # train(True) of a merged layer, train(False) of an unmerged one
            sign = -1.0 if mode else 1.0
            self.base.weight.data += sign * (self.lora_B @ self.lora_A)
            self.merged = not mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) if self.merged else self.base(x) + x @ self.lora_A.T @ self.lora_B.T


def test_a_lora_wrapping_torchs_own_layer_is_left_as_found():
    """Second final read of 85880442: only the parameters held by the class writing train() were kept, so a LoRA
    merging into its wrapped nn.Linear's weight came back merged in the weight (output off by 3.69)."""
    torch.manual_seed(0)
    model, x = nn.Sequential(WrappedLoRA(4, 8), nn.ReLU(), nn.Linear(8, 3)).train(), torch.randn(6, 4)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for block in (audit_mode, no_trace):
        with block(model), torch.no_grad():
            model(x)
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items()), block.__name__
        assert not model[0].merged and model.training
