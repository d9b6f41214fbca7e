"""CLI trial (repair): a CausalRepairModule that LightningCLI builds from a config (the model and the
terms given by class path) loads from its checkpoint with ``load_from_checkpoint(path)`` alone, as
Lightning's CLI-built modules do: the config is plain data, saved as hyper-parameters."""

from __future__ import annotations

import sys

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip
from lightning_causal.models import MLP

_MODEL = {
    "class_path": "lightning_causal.CausalRepairModule",
    "init_args": {
        "model": {"class_path": "lightning_causal.models.MLP", "init_args": {"in_features": 3, "hidden": [5]}},
        "terms": [{"class_path": "lightning_causal.CounterfactualFairnessTerm",
                   "init_args": {"counterfactual": {"class_path": "lightning_causal.causal.AttributeFlip",
                                                    "init_args": {"column": 0}},
                                 "weight": 2.5, "name": "cf"}}],
        "lr": 0.02,
    },
}


def _loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 3, generator=g)
    x[:, 0] = (x[:, 0] > 0.5).float()
    return DataLoader(TensorDataset(x, (x[:, 1] > 0.5).long()), batch_size=16)


def _fit(tmp_path, monkeypatch, model: dict) -> tuple[str, CausalRepairModule]:  # noqa: ANN001
    monkeypatch.setattr(sys, "argv", ["fit.py"])  # the config comes from `args` alone
    trainer = {"max_epochs": 1, "logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
               "enable_model_summary": False, "accelerator": "cpu", "default_root_dir": str(tmp_path)}
    cli = LightningCLI(args={"trainer": trainer, "model": model}, run=False, save_config_callback=None,
                       seed_everything_default=0)
    cli.trainer.fit(cli.model, _loader())
    path = str(tmp_path / "repair.ckpt")
    cli.trainer.save_checkpoint(path)
    return path, cli.model


def test_a_cli_built_repair_loads_without_passing_the_model_and_terms(tmp_path, monkeypatch):
    path, trained = _fit(tmp_path, monkeypatch, _MODEL)
    loaded = CausalRepairModule.load_from_checkpoint(path, weights_only=True)  # the config is plain data
    assert isinstance(loaded.model, MLP) and loaded.model.net[0].out_features == 5
    (term,) = loaded.terms
    assert isinstance(term, CounterfactualFairnessTerm) and (term.name, term.weight) == ("cf", 2.5)
    assert isinstance(term.counterfactual, AttributeFlip) and loaded.lr == 0.02
    for (name, a), b in zip(trained.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    own = CausalRepairModule.load_from_checkpoint(path, model=MLP(3, hidden=(5,)))  # model= replaces the config's
    assert torch.equal(own.model.net[0].weight, trained.model.net[0].weight) and own.terms[0].name == "cf"


def test_a_repair_built_in_python_still_asks_for_the_model(tmp_path):
    import lightning.pytorch as pl

    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(CausalRepairModule(nn.Linear(3, 2), [CounterfactualFairnessTerm(AttributeFlip(0))]), _loader())
    trainer.save_checkpoint(tmp_path / "plain.ckpt")
    assert torch.load(tmp_path / "plain.ckpt", weights_only=True)["hyper_parameters"] == {"lr": 0.001, "fuse_forward": True}
    with pytest.raises(MisconfigurationException, match=r"Expected the argument `model`"):
        CausalRepairModule.load_from_checkpoint(tmp_path / "plain.ckpt")


class _Mine(pl.LightningModule):
    """A user's module saving its hyper-parameters (a wrap() checkpoint rebuilds it from them)."""

    def __init__(self, hidden: int = 4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(3, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.net(x)

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _plain_trainer(tmp_path) -> pl.Trainer:  # noqa: ANN001
    return pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, default_root_dir=tmp_path)


def test_a_repair_checkpoint_loads_for_inference_without_its_terms(tmp_path):
    """The terms act in training only: a wrap() (or plain) checkpoint loads with ``model=`` alone, and a
    fit of the module so loaded warns that the checkpoint's terms are not trained."""
    inner = _Mine(hidden=6)
    trainer = _plain_trainer(tmp_path)
    trainer.fit(CausalRepairModule.wrap(inner, [CounterfactualFairnessTerm(AttributeFlip(0), weight=3.0, name="cf")]), _loader())
    trainer.save_checkpoint(tmp_path / "wrap.ckpt")
    loaded = CausalRepairModule.load_from_checkpoint(tmp_path / "wrap.ckpt", model=_Mine)
    assert loaded.terms == [] and isinstance(loaded.model, _Mine) and loaded.model.hparams.hidden == 6
    x = _loader().dataset.tensors[0]
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), inner(x), rtol=0, atol=0)  # the repaired weights
    with pytest.warns(UserWarning, match=r"saved by a fit with the repair terms \['cf'\].*its terms: \[\].*not trained"):
        _plain_trainer(tmp_path).fit(loaded, _loader())


def test_the_repair_config_example_runs_and_its_best_checkpoint_loads_alone(tmp_path, monkeypatch):
    """examples/config_fairness_repair.yaml (shortened): the best audited checkpoint loads with the path
    alone, and its fairness gap recomputed by hand (flip column ``a`` of the probe, mean |Δp(class 1)|)
    is the score it was kept for."""
    from pathlib import Path

    from lightning_causal.callbacks import AuditModelCheckpoint
    from lightning_causal.datasets import make_synthetic_fairness

    config = Path(__file__).resolve().parents[2] / "examples" / "config_fairness_repair.yaml"
    monkeypatch.setattr(sys, "argv", ["fit.py"])
    monkeypatch.chdir(tmp_path)  # the config's relative directories (checkpoints)
    cli = LightningCLI(args=["fit", "--config", str(config), "--trainer.max_epochs=2", "--data.init_args.n=400",
                             f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.enable_model_summary=false",
                             "--trainer.accelerator=cpu"],  # the loaded model meets CPU inputs, on a GPU machine too
                       save_config_callback=None)
    best = next(c for c in cli.trainer.callbacks if isinstance(c, AuditModelCheckpoint))
    loaded = CausalRepairModule.load_from_checkpoint(best.best_model_path, weights_only=True).eval()
    assert [(t.name, t.weight) for t in loaded.terms] == [("counterfactual_fairness", 5.0)]
    x = make_synthetic_fairness(n=400, seed=0).x[320:]  # the validation rows: the probe
    flipped = x.clone()
    flipped[:, 0] = 1 - flipped[:, 0]
    with torch.no_grad():
        gap = (loaded(x).softmax(-1)[:, 1] - loaded(flipped).softmax(-1)[:, 1]).abs().mean()
    torch.testing.assert_close(gap, best.best_model_score.to(gap.dtype), rtol=1e-5, atol=1e-7)
