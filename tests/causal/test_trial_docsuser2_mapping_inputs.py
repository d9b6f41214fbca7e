"""A model that takes one mapping (docs/recipes.md, 'Models of several inputs') is explained through
a wrapper of tensors. Given the mapping (or a list) as ``inputs``, the estimators and ``Probe`` said
only 'Expected argument `inputs` to be a tensor or a tuple of tensors but got <class 'dict'>'; the
error now names the way out, and the wrapper's numbers equal a float64 loop."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import Probe
from lightning_causal.causal import input_effects


class _OneMapping(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 2), nn.Linear(2, 2)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.a(batch["image"]) + self.b(batch["tab"]).relu()


class _Tensors(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, tab: torch.Tensor) -> torch.Tensor:
        return self.model({"image": image, "tab": tab})


def _batch() -> dict:
    g = torch.Generator().manual_seed(1)
    return {"image": torch.randn(5, 3, generator=g, dtype=torch.float64),
            "tab": torch.randn(5, 2, generator=g, dtype=torch.float64)}


@pytest.mark.parametrize("call", [lambda m, b: input_effects(m, b), lambda m, b: Probe(b)])
def test_a_mapping_of_inputs_names_the_wrapper(call):
    with pytest.raises(TypeError, match=r"wrap it in a module whose forward takes the tensors, forward\(self, image, tab\)"):
        call(_OneMapping().double(), _batch())


def test_a_list_of_inputs_names_the_tuple():
    b = _batch()
    with pytest.raises(TypeError, match=r"pass the inputs as a tuple, tuple\(inputs\)"):
        input_effects(_OneMapping().double(), [b["image"], b["tab"]])


def test_the_wrapper_gives_the_effects_of_a_float64_loop():
    torch.manual_seed(0)
    model, b = _OneMapping().double().eval(), _batch()
    effects = input_effects(_Tensors(model), (b["image"], b["tab"]), (torch.tensor([[0, 1, 2]]), torch.tensor([[3, 4]])),
                            target=1)
    ref = torch.zeros(5, 5, dtype=torch.float64)
    for g, (key, col) in enumerate([("image", 0), ("image", 1), ("image", 2), ("tab", 0), ("tab", 1)]):
        cut = {k: v.clone() for k, v in b.items()}
        cut[key][:, col] = 0.0
        ref[:, g] = (model(b) - model(cut))[:, 1].detach()
    torch.testing.assert_close(effects, ref)
