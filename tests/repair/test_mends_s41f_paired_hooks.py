"""final_read_D F1, F2: BackdoorSuppressionTerm's paired passes (PairedPasses) with a suspect that is a BatchNorm layer,
and with activation checkpointing.

F1: the term's capture of a suspect's output ran before PairedPasses' own forward hooks, so a suspect that is itself a
training-mode BatchNorm layer was captured, in the stamped pass, with torch's eval-mode output (the running statistics)
before the hook gave the clean pass's batch statistics' output: a trigger that changes nothing had a units penalty of
0.41, and any forward hook on that layer saw the same. PairedPasses' hooks now run first.

F2: a model that draws (dropout) with a training-mode BatchNorm inside a torch.utils.checkpoint segment: the backward's
recomputation ran the BatchNorm without the stamped pass's hooks (torch's CheckpointError with use_reentrant=False; a
wrong gradient with use_reentrant=True). The term now runs such a model's rows as one pass of both halves, as before the
paired passes, with a warning naming the way out; checkpointing turned on after the model's first step is refused."""

import warnings

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lightning_causal import BackdoorSuppressionTerm
from lightning_causal.causal.backdoor.triggers import Trigger

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
SIDE = {1: 8, 2: 6, 3: 4}


class ConvNet(nn.Module):
    """Conv -> BatchNorm -> ReLU -> Dropout -> Linear, on one channel of side SIDE[d] in d dimensions."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.conv, self.bn, self.drop = CONV[d](1, 4, 3), NORM[d](4), nn.Dropout(0.3)
        self.head = nn.Linear(4 * (SIDE[d] - 2) ** d, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(torch.relu(self.bn(self.conv(x)))).flatten(1))


def _images(d: int, n: int = 16) -> tuple[torch.Tensor, torch.Tensor, Trigger]:
    shape = (1,) + (SIDE[d],) * d
    x = torch.randn(n, *shape, generator=torch.Generator().manual_seed(1))
    return x, torch.zeros(n, dtype=torch.long), Trigger(torch.zeros(shape), torch.full(shape, 5.0), target=1)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_a_batchnorm_suspect_has_no_penalty_for_a_trigger_that_changes_nothing(d):
    torch.manual_seed(0)
    model, (x, y, nothing) = ConvNet(d).train(), _images(d)
    term = BackdoorSuppressionTerm(nothing, suspects={"bn": [0, 1, 3]}, path="units", unlearn_weight=0.0,
                                   path_weight=1.0, distill_weight=0.0, augment=None)
    for _ in range(3):  # the first step finds the model draws (its pass run again as two), the next run two at once
        loss = term.loss(model, x, y)
        loss.backward()
        assert term.last_parts["path"] == 0.0 and float(loss.detach()) == 0.0  # before: 0.41, 0.37, 0.33 (d=2)


def test_a_forward_hook_on_a_batchnorm_layer_sees_the_same_output_in_both_passes():
    torch.manual_seed(0)
    model, (x, y, nothing) = ConvNet(2).train(), _images(2)
    seen: list[torch.Tensor] = []
    model.bn.register_forward_hook(lambda m, args, out: seen.append(out.detach().clone()))  # a user's, before the term's
    term = BackdoorSuppressionTerm(nothing, unlearn_weight=0.0, path_weight=1.0, distill_weight=0.0, augment=None)
    term.loss(model, x, y)
    seen.clear()
    term.loss(model, x, y)  # the clean pass, then the stamped pass of the same rows
    assert len(seen) == 2 and torch.equal(seen[0], seen[1])  # before: the stamped pass's eval-mode output


class Checkpointed(nn.Module):
    """Linear -> checkpoint(Linear, BatchNorm1d (or nothing), ReLU, Dropout) -> Linear; ``checkpointed`` False runs the
    same block without checkpointing."""

    def __init__(self, reentrant: bool, bn: bool = True, checkpointed: bool = True) -> None:
        super().__init__()
        self.reentrant, self.checkpointed = reentrant, checkpointed
        self.inp, self.head = nn.Linear(4, 8), nn.Linear(8, 3)
        self.block = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8) if bn else nn.Identity(), nn.ReLU(), nn.Dropout(0.3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        h = checkpoint(self.block, h, use_reentrant=self.reentrant) if self.checkpointed else self.block(h)
        return self.head(h)


REAL = Trigger(torch.tensor([1.0, 0.0, 0.0, 1.0]), torch.tensor([3.0, 0.0, 0.0, -2.0]), target=1)
WAY_OUT = "turn checkpointing off for the repair fit"


def _rows() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(16, 4, generator=torch.Generator().manual_seed(1)), torch.zeros(16, dtype=torch.long)


def _logit_term() -> BackdoorSuppressionTerm:
    return BackdoorSuppressionTerm(REAL, path="logit", unlearn_weight=0.0, path_weight=1.0, distill_weight=0.0,
                                   augment=None)


def _step(model: nn.Module, run) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad()
    torch.manual_seed(5)
    loss = run()
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("reentrant", [False, True])
def test_a_batchnorm_in_a_checkpointed_segment_runs_one_pass_of_both_halves_with_a_warning(reentrant):
    x, y = _rows()
    torch.manual_seed(0)
    model = Checkpointed(reentrant).train()
    torch.manual_seed(0)
    plain = Checkpointed(reentrant, checkpointed=False).train()  # the same weights, not checkpointed

    def by_hand() -> torch.Tensor:  # one pass of both halves: each row's own masks, one BatchNorm batch of 2N rows
        p = plain(torch.cat([x, REAL.apply(x)])).softmax(1)[:, 1]
        return (p[16:] - p[:16].detach()).clamp_min(0).sum() / 16

    term = _logit_term()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # before: torch's CheckpointError in the backward (use_reentrant=False), a wrong gradient
            loss, grads = _step(model, lambda: term.loss(model, x, y))
            want, want_grads = _step(plain, by_hand)
            torch.testing.assert_close(loss, want)
            for got, hand in zip(grads, want_grads):
                torch.testing.assert_close(got, hand)
    said = [str(w.message) for w in caught if "checkpointed segment" in str(w.message)]
    assert len(said) == 1 and WAY_OUT in said[0] and "BatchNorm" in said[0]  # once per model


@pytest.mark.parametrize("reentrant", [False, True])
def test_a_checkpointed_segment_without_batchnorm_keeps_the_paired_passes(reentrant):
    x, y = _rows()
    grads = {}
    for checkpointed in (True, False):
        torch.manual_seed(0)
        model, term = Checkpointed(reentrant, bn=False, checkpointed=checkpointed).train(), _logit_term()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no warning: checkpointing replays the dropout draws itself
            steps = [_step(model, lambda: term.loss(model, x, y)) for _ in range(2)]  # noqa: B023
        assert term._draws[model] is True  # the stamped rows ran as a pass of their own
        grads[checkpointed] = steps
    for (loss, got), (want, hand) in zip(grads[True], grads[False]):
        torch.testing.assert_close(loss, want)
        for a, b in zip(got, hand):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("reentrant", [False, True])
def test_checkpointing_turned_on_after_the_first_step_is_refused(reentrant):
    x, y = _rows()
    torch.manual_seed(0)
    model, term = Checkpointed(reentrant, checkpointed=False).train(), _logit_term()
    term.loss(model, x, y)  # paired passes: the model draws
    model.checkpointed = True
    with pytest.raises(ValueError, match="turn checkpointing on before the repair fit's first step") as raised:
        term.loss(model, x, y)
    assert WAY_OUT in str(raised.value)
