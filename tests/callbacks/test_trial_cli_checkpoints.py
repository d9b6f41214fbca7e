"""CLI trial: checkpoints of modules that LightningCLI builds from a config load as Lightning's
CLI-built modules do, with ``load_from_checkpoint(path)`` alone (the network rebuilt from its config)."""

from __future__ import annotations

import sys

import pytest
import torch
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal.models import DigitsCNN, LightningClassifier
from tests.helpers.lightning import classifier, loaders, trainer

_TRAINER = {"max_steps": 2, "logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
            "enable_model_summary": False, "accelerator": "cpu"}


def _cli_checkpoint(tmp_path, model: dict, monkeypatch) -> tuple[str, torch.nn.Module]:  # noqa: ANN001
    monkeypatch.setattr(sys, "argv", ["fit.py"])  # the config comes from `args` alone
    cli = LightningCLI(args={"trainer": {**_TRAINER, "default_root_dir": str(tmp_path)}, "model": model,
                             "data": {"class_path": "lightning_causal.datamodules.DigitsDataModule"}},
                       run=False, save_config_callback=None, seed_everything_default=0)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    path = str(tmp_path / "cli.ckpt")
    cli.trainer.save_checkpoint(path)
    return path, cli.model


def test_a_cli_built_classifier_loads_without_passing_the_network(tmp_path, monkeypatch):
    config = {"class_path": "lightning_causal.models.LightningClassifier",
              "init_args": {"model": {"class_path": "lightning_causal.models.DigitsCNN", "init_args": {"hidden": 24}},
                            "lr": 0.01, "optimizer": "sgd"}}
    path, trained = _cli_checkpoint(tmp_path, config, monkeypatch)
    loaded = LightningClassifier.load_from_checkpoint(path, weights_only=True)  # the config is plain data
    assert isinstance(loaded.model, DigitsCNN) and loaded.model.fc1.out_features == 24  # built from the config
    assert (loaded.lr, loaded.optimizer_name) == (0.01, "sgd")
    for (name, a), b in zip(trained.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    given = LightningClassifier.load_from_checkpoint(path, model=DigitsCNN(hidden=24))  # model= still wins
    assert torch.equal(given.model.fc1.weight, trained.model.fc1.weight)


def test_a_classifier_built_in_python_still_asks_for_the_network(tmp_path):
    t = trainer(tmp_path, max_steps=1)
    train, val = loaders()
    t.fit(classifier(), train, val)
    t.save_checkpoint(tmp_path / "plain.ckpt")
    assert "model" not in torch.load(tmp_path / "plain.ckpt", weights_only=True)["hyper_parameters"]
    with pytest.raises(MisconfigurationException, match=r"Expected the argument `model`"):
        LightningClassifier.load_from_checkpoint(tmp_path / "plain.ckpt")


def test_cli_predict_from_a_checkpoint_gives_the_loaded_classifiers_logits(tmp_path, monkeypatch):
    """``predict --config examples/config_digits.yaml --ckpt_path path`` (the CLI's inference route) ran
    into Lightning's 'predict_dataloader must be implemented': the datamodule now predicts on its
    validation split and LightningClassifier's predict_step returns the logits of the inputs."""
    from pathlib import Path

    from lightning_causal.models import load_digits_tensors

    monkeypatch.setattr(sys, "argv", ["main.py"])
    config = Path(__file__).resolve().parents[2] / "examples" / "config_digits.yaml"
    common = ["--config", str(config), f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.enable_model_summary=false",
              "--trainer.callbacks.init_args.probe_size=16"]
    fit = LightningCLI(args=["fit", *common, "--trainer.max_steps=2"], save_config_callback=None)
    path = tmp_path / "fit.ckpt"
    fit.trainer.save_checkpoint(path)
    with pytest.warns(UserWarning, match="audits nothing"):  # the config's audit callback, outside fit
        predicted = LightningCLI(args=["predict", *common, f"--ckpt_path={path}"], save_config_callback=None)
    logits = torch.cat(predicted.trainer.predict_loop.predictions)
    loaded = LightningClassifier.load_from_checkpoint(path).eval()
    with torch.no_grad():
        torch.testing.assert_close(logits, loaded(load_digits_tensors()[2]))  # the validation images, in order
