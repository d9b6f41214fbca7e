"""Review of 335e4081: ``BackdoorSuppressionTerm(path="units")`` records every call of a suspect layer.

A suspect layer the model skips in a step (LayerDrop: the block is not called) had no call recorded, and the term
failed with torch's 'stack expects a non-empty TensorList', naming nothing (before 335e4081, a bare KeyError): it is
now refused naming the layer and the ways out. A layer called once on other rows (an expert of a mixture that got no
row) was said to run '1 times'.
"""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorSuppressionTerm
from lightning_causal.causal.backdoor.triggers import Trigger


class _LayerDrop(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.head = nn.Linear(16, 6), nn.Linear(6, 6), nn.Linear(6, 3)
        self.skip = True

    def forward(self, x):
        h = torch.relu(self.a(x.flatten(1)))
        return self.head(h if self.skip else h + self.b(h))


class _Experts(nn.Module):
    """Each row goes to the expert its gate picks; the gate here sends every row to expert 1."""

    def __init__(self) -> None:
        super().__init__()
        self.experts = nn.ModuleList([nn.Linear(16, 6), nn.Linear(16, 6)])
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        x = x.flatten(1)
        pick = torch.ones(len(x), dtype=torch.long)
        out = x.new_zeros(len(x), 6)
        for i, expert in enumerate(self.experts):
            out[pick == i] = expert(x[pick == i])
        return self.head(out)


def _term(layer: str) -> BackdoorSuppressionTerm:
    mask = torch.zeros(1, 4, 4)
    mask[:, 3:, 3:] = 1
    return BackdoorSuppressionTerm(trigger=Trigger(mask, 1.0, 0), suspects={layer: [0, 1]}, path="units",
                                   unlearn_weight=0.0, distill_weight=0.0, augment=None)


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(8, 1, 4, 4, generator=g), torch.randint(0, 3, (8,), generator=g)


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_a_suspect_layer_skipped_in_the_pass_is_refused_naming_it():
    torch.manual_seed(0)
    model = _LayerDrop()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the term's error alone (capture's "did not run" warning came first, s38)
        with pytest.raises(ValueError, match=r"suspect layer 'b' to run.*did not run.*LayerDrop.*path='logit'"):
            _term("b").loss(model, *_batch())
    assert _hooks(model) == 0
    model.skip = False  # the step that runs it: the penalty as before
    assert float(_term("b").loss(model, *_batch())) > 0


def test_a_layer_called_once_on_other_rows_is_said_to_run_once():
    torch.manual_seed(0)
    model = _Experts()
    with pytest.raises(ValueError, match=r"suspect layer 'experts.0'.*\(16\).*runs once per forward pass and its call 1 "
                                         r"returned 0 rows"):
        _term("experts.0").loss(model, *_batch())
    assert _hooks(model) == 0
