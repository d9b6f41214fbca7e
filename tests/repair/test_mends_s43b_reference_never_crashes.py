"""aa878fd8/3c675e27 left out of BackdoorSuppressionTerm's frozen reference every child of the network that no set-up
pass called, as placeholders refusing a call: a child run only on some batches (a batch-level branch; a branch only
some rows take) was left out, and a fit that trained before stopped mid-way with a RuntimeError. Now a trainable child
is always copied, and a frozen one left out (a teacher) runs the network's own child where it is reached after all, in
eval mode with its buffers put back; weights moved in place since set-up (an EMA teacher) are warned of once."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import Trigger
from lightning_causal.repair import BackdoorSuppressionTerm

TRIGGER = Trigger(torch.tensor([0.0, 0.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 3.0, 0.0]), target=1)


class BatchBranch(nn.Module):
    """Runs ``a`` on batches whose mean x0 is above 0, else ``b``; ``frozen`` (BatchNorm inside) where x0's mean is
    below -1; ``teacher`` never."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Linear(4, 2), nn.Linear(4, 2)
        self.frozen = nn.Sequential(nn.Linear(4, 2), nn.BatchNorm1d(2)).requires_grad_(False)
        self.teacher = nn.Linear(4, 2).requires_grad_(False)
        with torch.no_grad():
            self.frozen[1].running_mean.fill_(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x[:, 0].mean() < -1:
            return self.frozen(x)
        return self.a(x) if x[:, 0].mean() > 0 else self.b(x)


def _loss(term: BackdoorSuppressionTerm, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(2)
    return term.loss(model, x, y)


def test_children_some_batches_run_never_crash_and_give_the_whole_copys_loss() -> None:
    model = BatchBranch().train()
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    y = torch.arange(32) % 2
    term = BackdoorSuppressionTerm(TRIGGER, augment=None)
    term.setup(model, x.abs())  # every set-up pass takes branch a
    kinds = {name: type(m).__name__ for name, m in term.reference.named_children()}
    assert kinds == {"a": "Linear", "b": "Linear", "frozen": "_LeftOut", "teacher": "_LeftOut"}  # b trainable: copied
    whole = BackdoorSuppressionTerm(TRIGGER, augment=None)
    whole.setup(model)  # no inputs: the whole network copied
    rows = -x.abs()  # branch b: before, RuntimeError "left out 'b'"
    assert torch.equal(_loss(term, model, rows, y), _loss(whole, model, rows, y))
    stats = model.frozen[1].running_mean.clone()
    rows = -x.abs() - 2.0  # the frozen child, run by the reference as the network's own
    with torch.no_grad():
        assert torch.equal(term.reference(rows), whole.reference(rows))
    assert model.training and model.frozen.training  # the live child ran in eval mode, its mode put back
    assert torch.equal(model.frozen[1].running_mean, stats)  # its running statistics read, not updated


def test_a_left_out_child_moved_in_place_is_warned_of_once() -> None:
    model = BatchBranch().eval()  # train mode: the network's own pass would move the BatchNorm's statistics (warned)
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    y = torch.arange(32) % 2
    term = BackdoorSuppressionTerm(TRIGGER, augment=None)
    term.setup(model, x.abs())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _loss(term, model, x.abs(), y)  # the branch not taken: nothing reached, no warning
    with torch.no_grad():
        model.frozen[0].weight.mul_(0.9)  # an EMA step before the placeholder is first reached
    with pytest.warns(UserWarning, match="left out 'frozen'.*moved since set-up"):
        _loss(term, model, -x.abs() - 2.0, y)  # reached: copied as it is now, warned
    with torch.no_grad():
        model.frozen[0].weight.mul_(0.9)  # after the copy: the reference holds its copy, as a whole copy would
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _loss(term, model, -x.abs() - 2.0, y)  # once
