"""LoRA written by hand in other names than PEFT's (newuser7 trial): a frozen ``nn.Linear`` with trainable
low-rank ``A``, ``B`` beside it, as the wrapper's own parameters (lit-gpt's layout) or in a child module of the
user's class (``self.lora = LoRALayer(...)``). The layer map's default layers took the frozen base layers
(``fc1.base``, ``fc2.base``: the adapters' term, the part being fine-tuned, in no layer of the map), or the base
and the adapter as two layers of a chain though they run side by side; the wrapper is the layer now, as for
PEFT's ``base_layer``/``lora_A``/``lora_B``."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.causal import layer_causal_map, unit_effects
from lightning_causal.causal.structure.default_layers import leaf_layers


def _frozen(layer: nn.Linear) -> nn.Linear:
    for p in layer.parameters():
        p.requires_grad_(False)
    return layer


class OwnParameters(nn.Module):
    """``base(x) + 2 x A^T B^T`` with ``A``, ``B`` parameters of the wrapper."""

    def __init__(self, base: nn.Linear, r: int = 2) -> None:
        super().__init__()
        self.base = _frozen(base)
        g = torch.Generator().manual_seed(base.in_features)
        self.A = nn.Parameter(torch.randn(r, base.in_features, generator=g))
        self.B = nn.Parameter(torch.randn(base.out_features, r, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + 2.0 * (x @ self.A.t() @ self.B.t())


class LoRALayer(nn.Module):
    def __init__(self, d_in: int, d_out: int, r: int = 2) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(d_out)
        self.A = nn.Parameter(torch.randn(d_in, r, generator=g))
        self.B = nn.Parameter(torch.randn(r, d_out, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.A @ self.B


class ChildAdapter(nn.Module):
    """``linear(x) + lora(x)``, the adapter a child module of the user's class."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = _frozen(linear)
        self.lora = LoRALayer(linear.in_features, linear.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.lora(x)


class Net(nn.Module):
    def __init__(self, wrap: type[nn.Module]) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = wrap(nn.Linear(4, 8)), nn.Linear(8, 6), wrap(nn.Linear(6, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.tanh(self.fc2(torch.tanh(self.fc1(x)))))


class ConvLoRA(nn.Module):
    """kohya's layout of a LoRA convolution: ``base(x) + lora_up(lora_down(x))``, torch layers named for LoRA."""

    def __init__(self, base: nn.Conv2d, r: int = 2) -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.lora_down = nn.Conv2d(base.in_channels, r, 3, padding=1, bias=False)
        self.lora_up = nn.Conv2d(r, base.out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.lora_up(self.lora_down(x))


class PartlyFrozen(nn.Module):
    """A block of torch's layers whose first is frozen (partial fine-tuning): two layers in a chain, no adapter."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = _frozen(nn.Linear(4, 8)), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(torch.relu(self.first(x)))


def test_a_hand_written_lora_wrapper_is_the_layer_of_the_default_map() -> None:
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    for wrap in (OwnParameters, ChildAdapter):
        torch.manual_seed(0)
        model = Net(wrap).eval()
        assert leaf_layers(model) == ["fc1", "fc2", "fc3"], wrap.__name__
        got = layer_causal_map(model, x, max_rows=None)
        named = layer_causal_map(model, x, layers=["fc1", "fc2", "fc3"], max_rows=None)
        assert got.layers == ["fc1", "fc2", "fc3"]
        torch.testing.assert_close(got.cka, named.cka, rtol=0, atol=0)
        torch.testing.assert_close(got.response, named.response, rtol=0, atol=0)


def test_a_partly_frozen_block_of_torch_layers_keeps_both_layers() -> None:
    model = nn.Sequential(PartlyFrozen(), nn.Tanh(), nn.Linear(3, 2))
    assert leaf_layers(model) == ["0.first", "0.second", "2"]


def test_a_lora_convolution_of_torch_layers_named_for_lora_is_one_layer() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(ConvLoRA(nn.Conv2d(1, 4, 3, padding=1)), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 3)).eval()
    assert leaf_layers(model) == ["0", "3"]
    x = torch.randn(10, 1, 5, 5, generator=torch.Generator().manual_seed(1))
    effects = unit_effects(model, x, "0")  # do(channel := 0) of the adapted convolution, base + adapter
    with torch.no_grad():
        out = model(x)
        t = out.argmax(1, keepdim=True)
        h = model[0](x)
        want = []
        for c in range(4):
            hc = h.clone()
            hc[:, c] = 0
            want.append((out.gather(1, t) - model[3](model[2](model[1](hc))).gather(1, t))[:, 0])
    torch.testing.assert_close(effects, torch.stack(want, 1), rtol=1e-5, atol=1e-6)
