"""newuser101: ``Trainer(precision="16-true")``, which Lightning runs on a CPU too, gave a ``LightningClassifier`` and a
``CausalRepairModule`` NaN weights at their first step: their Adam took torch's ``eps=1e-8``, which is 0 in float16, so a
weight whose gradient squares to 0 there stepped by 0/0. Over float16 weights they now build Adam with ``eps=1e-4``;
over float32 and bfloat16 ones, torch's default as before (the same steps: a float32 fit is unchanged)."""

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.datasets import make_synthetic_fairness
from lightning_causal.models import MLP, LightningClassifier


def _fit(module: pl.LightningModule, loader: DataLoader, precision: str, root) -> pl.LightningModule:
    pl.Trainer(max_steps=2, precision=precision, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, default_root_dir=root).fit(module, loader)
    return module


@pytest.mark.parametrize("repair", [False, True], ids=["LightningClassifier", "CausalRepairModule"])
def test_sixteen_true_trains_finite_weights(tmp_path, repair):
    data = make_synthetic_fairness(n=128, seed=0)
    loader = DataLoader(TensorDataset(data.x, data.y), batch_size=64)
    torch.manual_seed(0)
    net = MLP(4, hidden=(32, 16), out_features=2)
    module = CausalRepairModule(net, [CounterfactualFairnessTerm(data.scm, data.sensitive)], lr=1e-2) if repair else (
        LightningClassifier(net, lr=1e-2))
    _fit(module, loader, "16-true", tmp_path)
    weights = dict(net.named_parameters())
    assert all(w.dtype == torch.float16 for w in weights.values())
    assert [n for n, w in weights.items() if not torch.isfinite(w).all()] == []  # before: 0.weight, 0.bias, 2.weight, ...
    assert module.optimizers().optimizer.param_groups[0]["eps"] == 1e-4
    torch.manual_seed(0)
    float32 = LightningClassifier(MLP(4, hidden=(32, 16), out_features=2), lr=1e-2)
    _fit(float32, loader, "32-true", tmp_path)
    assert float32.optimizers().optimizer.param_groups[0]["eps"] == 1e-8  # torch's default, as before
