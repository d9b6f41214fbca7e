"""A warning of the package raised in a Trainer fit's training step named torch's line, not the user's: the step runs
inside the optimizer's closure, whose frames (torch/optim, torch.no_grad's wrapper torch/utils/_contextlib.py) sit
between Lightning's, and ``outside_package`` passed over the package's and Lightning's frames only. A DDP model's
``nn.Module.__call__`` named torch/nn/modules/module.py alike. Torch's frames past the package are passed over now."""

from __future__ import annotations

import warnings

import torch
from lightning import pytorch as pl
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal._user_warnings import warn_at_users_line
from lightning_causal.causal import AttributeFlip


def test_a_warning_of_the_training_step_names_the_users_fit_line(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(16, 3)
    x[:, 0] = (x[:, 0] > 0).float()
    y = (torch.rand(16, 3) > 0.5).float()  # multi-hot: CounterfactualFairnessTerm warns at its first loss
    repair = CausalRepairModule(nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 3)),
                                task_loss=F.binary_cross_entropy_with_logits, terms=[CounterfactualFairnessTerm(AttributeFlip(0))])
    trainer = pl.Trainer(default_root_dir=tmp_path, max_steps=1, accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(repair, DataLoader(TensorDataset(x, y), batch_size=8))
    ours = [w for w in caught if "multi-hot" in str(w.message)]
    assert len(ours) == 1
    assert ours[0].filename == __file__, ours[0].filename  # torch/utils/_contextlib.py before


def test_a_warning_under_a_torch_decorator_names_the_callers_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.no_grad()(warn_at_users_line)("said at the caller's line")
    assert [w.filename for w in caught] == [__file__]  # torch/utils/_contextlib.py before
