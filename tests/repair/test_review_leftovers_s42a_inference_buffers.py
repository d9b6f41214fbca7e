"""review_leftovers_s42a: PairedPasses (1ec27449) read the version counter of every buffer of the model, and an inference
tensor has none: a buffer built under ``torch.inference_mode`` (a cache a model makes at its first call, in Lightning's
validation loop) made BackdoorSuppressionTerm and CounterfactualFairnessTerm raise "Inference tensors do not track
version counter" at every step, drawing or not, where such a model trains (the buffer only added) and the terms ran
before."""

import pytest
import torch
from torch import nn

from lightning_causal import AttributeFlip, CounterfactualFairnessTerm
from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm


class LazyOffset(nn.Module):
    """An offset buffer built at the first call (in inference mode there), only added in training."""

    def __init__(self, drop: float) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.head, self.drop = nn.Linear(4, 8), nn.Linear(8, 3), nn.Dropout(drop)
        self.register_buffer("offset", None, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.offset is None:
            self.offset = torch.linspace(-1.0, 1.0, 8)
        return self.head(self.drop(torch.relu(self.inp(x) + self.offset)))


def _models(drop: float) -> tuple[nn.Module, nn.Module]:
    """The model with its offset built in inference mode, and the same model with a plain offset."""
    built, plain = LazyOffset(drop), LazyOffset(drop)
    with torch.inference_mode():
        built.eval()(torch.zeros(2, 4))
    plain.offset = torch.linspace(-1.0, 1.0, 8)
    assert built.offset.is_inference() and not plain.offset.is_inference()
    return built.train(), plain.train()


def _rows() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(16, 4, generator=g)
    x[:, 2] = (x[:, 2] > 0).float()
    return x, torch.randint(0, 3, (16,), generator=g)


def _backdoor() -> BackdoorSuppressionTerm:
    trigger = Trigger(torch.tensor([1.0, 0.0, 0.0, 1.0]), torch.tensor([3.0, 0.0, 0.0, -2.0]), target=1)
    return BackdoorSuppressionTerm(trigger, path="logit", unlearn_weight=0.5, distill_weight=0.0, augment=None)


@pytest.mark.parametrize("drop", [0.0, 0.3])
@pytest.mark.parametrize("term", [_backdoor, lambda: CounterfactualFairnessTerm(AttributeFlip(2), fraction=1.0)])
def test_a_buffer_built_in_inference_mode_computes_what_a_plain_one_does(term, drop):
    x, y = _rows()
    got = []
    for model in _models(drop):
        torch.manual_seed(7)
        made = term()
        steps = [made.loss(model, x, y) for _ in range(2)]  # before: RuntimeError at the first
        got.append(torch.stack(steps).detach())
    assert torch.equal(got[0], got[1])
    assert bool((got[0] > 0).all())


@pytest.mark.parametrize("drop", [0.0, 0.3])
def test_the_repair_modules_fused_steps_on_a_buffer_built_in_inference_mode(drop):
    from lightning_causal import CausalRepairModule

    x, y = _rows()
    got = []
    for model in _models(drop):
        module = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(2), fraction=1.0)]).train()
        logged: dict[str, float] = {}
        module.log_dict = lambda values, logged=logged, **kw: logged.update({k: float(v) for k, v in values.items()})
        module.log = lambda name, value, logged=logged, **kw: logged.__setitem__(name, float(value))
        torch.manual_seed(7)
        losses = [float(module.training_step((x, y), i).detach()) for i in range(3)]  # the second on fused: before, raised
        got.append((losses, logged["repair/counterfactual_fairness"]))
    assert got[0] == got[1]
