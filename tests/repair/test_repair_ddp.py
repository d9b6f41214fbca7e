"""CausalRepairModule with the fairness term under DDP (2 CPU processes, gloo)."""

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.causal.scm.fairness import counterfactual_fairness_gap
from lightning_causal.datasets.synthetic_fairness import make_synthetic_fairness
from lightning_causal.models import MLP
from lightning_causal.repair.fairness import CounterfactualFairnessTerm
from lightning_causal.repair.module import CausalRepairModule


def test_fairness_repair_under_ddp_lowers_the_gap(tmp_path):
    data = make_synthetic_fairness(800, seed=2)
    torch.manual_seed(0)
    model = MLP(data.x.shape[1], (16,), 2)
    loader = DataLoader(TensorDataset(data.x, data.y), batch_size=100, shuffle=False)
    plain = CausalRepairModule(model, [], lr=1e-2)
    pl.Trainer(max_epochs=15, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(plain, loader)
    x_cf = data.scm.counterfactual(data.x, {"a": 1.0 - data.x[:, 0]})
    before = counterfactual_fairness_gap(model, data.x, lambda x: x_cf)["mean_abs"]
    term = CounterfactualFairnessTerm(data.scm, "a", weight=5.0)
    repair = CausalRepairModule(model, [term], lr=1e-2)
    trainer = pl.Trainer(max_epochs=5, accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=str(tmp_path))
    trainer.fit(repair, loader)
    after = counterfactual_fairness_gap(repair.model, data.x, lambda x: x_cf)["mean_abs"]
    assert after < 0.5 * before, (before, after)
