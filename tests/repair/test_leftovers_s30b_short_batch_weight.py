"""CounterfactualFairnessTerm gathered the forward arguments of a training batch by row, deciding by the batch's row
count alone: a weight passed to the model beside its inputs (``forward(x, w)``, ``w [16, 4]``, from ``unpack_batch``)
was passed whole on the batches of 32 rows and gathered by row on a short last batch of 16, so the fit stopped there
("mat1 and mat2 shapes cannot be multiplied (32x32 and 16x2)"), or, with ``fraction=0.5``, ran the term on other
weights (rows of ``w``) silently. ``CausalRepairModule`` now keeps the decision of its largest batch for smaller ones,
handing the terms the "pass whole" marks the engine reads (``forward_args.WholeAcrossBatches``)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.causal.engine.forward_args import ForwardArgs, WholeAcrossBatches, mark_whole
from lightning_causal.causal.scm.attribute_flip import AttributeFlip
from lightning_causal.repair.fairness import CounterfactualFairnessTerm
from lightning_causal.repair.module import CausalRepairModule
from tests.helpers.lightning import quick_trainer


class Hyper(nn.Module):
    """``head(tanh(x @ w.T))``: a weight ``w [16, 4]`` given as a forward argument."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(x @ w.T))


def _batch(n: int) -> torch.Tensor:
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(n))
    x[:, 0] = (x[:, 0] > 0).float()
    return x


@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_the_term_on_a_short_last_batch_runs_the_whole_weight(fraction: float) -> None:
    torch.manual_seed(0)
    model, w = Hyper(), torch.randn(16, 4)
    term = CounterfactualFairnessTerm(AttributeFlip(0), fraction=fraction)
    repair = CausalRepairModule(model, [term], unpack_batch=lambda b: (b[0], b[1], (w,)))
    y = torch.zeros(32, dtype=torch.long)
    repair.objective((_batch(32), y), 0)
    x = _batch(16)
    _, logs = repair.objective((x, y[:16]), 1)  # before (fraction 1.0): RuntimeError, mat1 and mat2 shapes
    k = int(16 * fraction)
    with torch.no_grad():  # every row's sensitive column flips: the distance over the first k rows, w whole
        expected = term.loss_from_outputs(model(x[:k], w), model(AttributeFlip(0)(x[:k]), w), None)
    torch.testing.assert_close(logs["repair/counterfactual_fairness"], expected)  # before (0.5): w's rows gathered


def test_a_fit_ending_on_a_short_batch_completes() -> None:
    torch.manual_seed(0)
    model, w = Hyper(), torch.randn(16, 4)
    data = TensorDataset(_batch(48), torch.randint(0, 2, (48,)))
    repair = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(0))], unpack_batch=lambda b: (b[0], b[1], (w,)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = quick_trainer(max_epochs=1, num_sanity_val_steps=0)
        trainer.fit(repair, DataLoader(data, batch_size=32))  # before: stopped at the second batch
    assert trainer.global_step == 2


def test_the_decision_of_the_largest_batch_marks_only_a_tensor_of_the_same_place_and_shape() -> None:
    w, other = torch.zeros(16, 4), torch.zeros(16, 3)
    kept = WholeAcrossBatches()
    assert kept.marked({"w": w, "m": torch.ones(32, 2)}, 32) is not None
    fargs = ForwardArgs(kept.marked({"w": w, "m": torch.ones(16, 2)}, 16), 16)
    assert fargs.is_whole(w) and not fargs.is_whole(fargs.kwargs["m"])
    assert not ForwardArgs(kept.marked({"w": other, "m": torch.ones(16, 2)}, 16), 16).is_whole(other)  # another shape
    assert not ForwardArgs(kept.marked({"w": w}, 16), 16).is_whole(w)  # another structure: left as it is
    marked = mark_whole((torch.ones(16), w), [0])  # a mark given before is kept beside the decision's
    kept = WholeAcrossBatches()
    kept.marked((torch.ones(32), torch.zeros(16, 4)), 32)  # the first one per sample there
    fargs = ForwardArgs(kept.marked(marked, 16), 16)
    assert fargs.is_whole(marked[0]) and fargs.is_whole(w)
