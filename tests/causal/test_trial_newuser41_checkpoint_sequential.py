"""A model that runs an ``nn.Sequential`` through ``torch.utils.checkpoint.checkpoint_sequential`` (a new user's
memory-saving trial): the container is never called (its children are, one by one), so a hook on it never fires.
Naming it was refused as a module that "did not run on the first probe sample" with causes that do not apply (a
branch, functional code, a frozen teacher), and by the layer map as "'body' did not run"; both now say why and name the
last child, whose effects equal those of the container in the model without checkpointing."""

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint_sequential

from lightning_causal.causal import SetTo, layer_causal_map, unit_effects


class _Net(nn.Module):
    def __init__(self, checkpointed: bool = True) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh())
        self.head = nn.Linear(8, 3)
        self.checkpointed = checkpointed

    def forward(self, x):
        h = checkpoint_sequential(self.body, 2, x, use_reentrant=False) if self.checkpointed else self.body(x)
        return self.head(h)


def _pair() -> tuple[nn.Module, nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = _Net().double().eval()
    plain = _Net(checkpointed=False).double().eval()
    plain.load_state_dict(model.state_dict())
    return model, plain, torch.randn(5, 4, dtype=torch.float64)


def test_the_sequential_that_checkpoint_sequential_runs_is_refused_naming_its_last_child():
    model, _, x = _pair()
    with pytest.raises(ValueError, match=r"module 'body' .*its submodules ran but it was not called: "
                                         r"torch.utils.checkpoint.checkpoint_sequential .*name its last child, 'body.3'"):
        unit_effects(model, x, "body")


def test_the_layer_map_names_the_last_child_of_a_sequential_that_did_not_run():
    model, _, x = _pair()
    with pytest.raises(ValueError, match=r"'body' did not run \(if its children ran: torch.utils.checkpoint"
                                         r".checkpoint_sequential .*'body.3'"):
        layer_causal_map(model, x, layers=["body", "head"])


def test_the_last_child_has_the_effects_of_the_container_without_checkpointing():
    model, plain, x = _pair()
    torch.testing.assert_close(unit_effects(model, x, "body.3", SetTo(0.25)), unit_effects(plain, x, "body", SetTo(0.25)),
                               rtol=0, atol=0)
