"""Review of leftovers_s41a (3235f100): on a model's first step, a BackdoorSuppressionTerm whose pass draws random
numbers throws its one pass away and puts the BatchNorm buffers back with an in-place ``copy_``. That write bumps the
buffers' version counter, which torch's training-mode BatchNorm saved for the backward of the step's task-loss pass
run before the term: a model with BatchNorm and dropout raised "one of the variables needed for gradient computation
has been modified by an inplace operation" at its first ``backward()``, in a ``CausalRepairModule`` fit too (fused or
not; bench_backdoor_rgb.py's model). The buffers are now put back through ``.data``."""

import copy

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import BackdoorSuppressionTerm, CausalRepairModule
from lightning_causal.causal.backdoor.triggers import Trigger


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3)).train()


def _term() -> BackdoorSuppressionTerm:
    trigger = Trigger(torch.tensor([1.0, 0.0, 0.0, 1.0]), torch.tensor([3.0, 0.0, 0.0, -2.0]), target=1)
    return BackdoorSuppressionTerm(trigger, augment=None, distill_weight=0.0)


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)


def test_the_task_pass_before_the_term_keeps_its_backward_and_its_gradient():
    x, y = _batch()
    joint, apart = _net(), _net()
    apart.load_state_dict(joint.state_dict())
    torch.manual_seed(7)
    task = nn.functional.cross_entropy(joint(x), y)
    (task + _term().loss(joint, x, y)).backward()  # before: RuntimeError (inplace operation) at the first step
    torch.manual_seed(7)
    nn.functional.cross_entropy(apart(x), y).backward()  # the same step's two parts, each backward on its own
    _term().loss(apart, x, y).backward()
    for (name, a), b in zip(joint.named_parameters(), apart.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-6, atol=1e-7), name
    for (name, a), b in zip(joint.named_buffers(), apart.buffers()):
        assert torch.equal(a, b), name  # the task pass and the term's clean pass, the thrown-away pass put back


@pytest.mark.parametrize("fuse", [True, False])
def test_a_repair_fit_of_a_batchnorm_dropout_model_runs(tmp_path, fuse):
    x, y = _batch()
    model = _net()
    held = copy.deepcopy(model.state_dict())
    pl.seed_everything(0, verbose=False)
    pl.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, default_root_dir=tmp_path).fit(
        CausalRepairModule(model, [_term()], lr=1e-2, fuse_forward=fuse), DataLoader(TensorDataset(x, y), batch_size=8))
    assert int(model[1].num_batches_tracked) == int(held["1.num_batches_tracked"]) + 4  # task + clean pass, 2 steps
    assert not torch.equal(model[0].weight, held["0.weight"])
