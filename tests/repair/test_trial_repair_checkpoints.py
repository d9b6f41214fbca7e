"""Trial (repair): checkpoints of LightningClassifier, CausalRepairModule and wrap() fits load
without passing again what the user already gave (hyper-parameters), and a wrap() checkpoint loads
as the wrap (the wrapped module's steps and optimizers), not as a plain CausalRepairModule."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip
from lightning_causal.models import LightningClassifier


class _Mine(pl.LightningModule):
    """A user's module with its own hyper-parameters, two parameter groups and a scheduler."""

    def __init__(self, hidden: int = 4, lr: float = 0.05, gamma: float = 0.5) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.body = nn.Sequential(nn.Linear(3, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 2)

    def forward(self, x):
        return self.head(self.body(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("mine_val", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        opt = torch.optim.SGD([{"params": self.body.parameters()}, {"params": self.head.parameters(), "lr": self.hparams.lr / 2}],
                              lr=self.hparams.lr)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, 1, gamma=self.hparams.gamma)}


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 3, generator=g)
    x[:, 0] = (x[:, 0] > 0.5).float()
    return DataLoader(TensorDataset(x, (x[:, 1] > 0.5).long()), batch_size=16)


def _fit(module, tmp_path):
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, _data(), _data())
    path = tmp_path / "fit.ckpt"
    trainer.save_checkpoint(path)
    return path


def _terms():
    return [CounterfactualFairnessTerm(AttributeFlip(0), weight=1.0)]


def test_lightning_classifier_checkpoint_keeps_lr_and_optimizer(tmp_path):
    path = _fit(LightningClassifier(nn.Linear(3, 2), lr=0.02, optimizer="sgd"), tmp_path)
    loaded = LightningClassifier.load_from_checkpoint(path, model=nn.Linear(3, 2))
    assert (loaded.lr, loaded.optimizer_name) == (0.02, "sgd")
    assert isinstance(loaded.configure_optimizers(), torch.optim.SGD)
    with pytest.raises(MisconfigurationException, match=r"`model`.*LightningClassifier.load_from_checkpoint\(path, model="):
        LightningClassifier.load_from_checkpoint(path)


def test_repair_checkpoint_keeps_lr(tmp_path):
    path = _fit(CausalRepairModule(nn.Linear(3, 2), _terms(), lr=0.02), tmp_path)
    loaded = CausalRepairModule.load_from_checkpoint(path, model=nn.Linear(3, 2), terms=_terms())
    assert loaded.lr == 0.02 and loaded.configure_optimizers().param_groups[0]["lr"] == 0.02


def test_wrap_checkpoint_loads_as_the_wrap_with_the_wrapped_modules_hyper_parameters(tmp_path):
    inner = _Mine(hidden=6, lr=0.3, gamma=0.25)
    path = _fit(CausalRepairModule.wrap(inner, _terms()), tmp_path)
    # the wrapped module's class: rebuilt from its saved hyper-parameters
    loaded = CausalRepairModule.load_from_checkpoint(path, model=_Mine, terms=_terms())
    assert isinstance(loaded.model, _Mine) and dict(loaded.model.hparams) == {"hidden": 6, "lr": 0.3, "gamma": 0.25}
    for a, b in zip(inner.state_dict().values(), loaded.model.state_dict().values()):
        assert torch.equal(a, b)
    # the wrap's steps and optimizers are the wrapped module's, as in the fit that saved it
    opt = loaded.configure_optimizers()["optimizer"]
    assert [g["lr"] for g in opt.param_groups] == [0.3, 0.15]
    # an instance of it (the documented route) also loads as the wrap
    again = CausalRepairModule.load_from_checkpoint(path, model=_Mine(hidden=6), terms=_terms())
    assert again.audited_module is again.model and torch.equal(again.model.head.weight, inner.head.weight)
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["causal_repair"]["wrapped"]["hyper_parameters"] == {"hidden": 6, "lr": 0.3, "gamma": 0.25}


def test_a_class_for_a_plain_repair_checkpoint_is_refused(tmp_path):
    path = _fit(CausalRepairModule(nn.Linear(3, 2), _terms()), tmp_path)
    with pytest.raises(MisconfigurationException, match=r"`model`.*class.*not a wrap\(\) fit"):
        CausalRepairModule.load_from_checkpoint(path, model=nn.Linear, terms=_terms())


def test_a_wrapped_class_that_cannot_be_built_from_its_saved_hyper_parameters_says_pass_an_instance(tmp_path):
    path = _fit(CausalRepairModule.wrap(LightningClassifier(nn.Linear(3, 2), lr=0.02), _terms()), tmp_path)
    with pytest.raises(MisconfigurationException, match=r"build `model` LightningClassifier.*\['lr', 'optimizer'\].*model=LightningClassifier\(\.\.\.\)"):
        CausalRepairModule.load_from_checkpoint(path, model=LightningClassifier, terms=_terms())
    loaded = CausalRepairModule.load_from_checkpoint(path, model=LightningClassifier(nn.Linear(3, 2)), terms=_terms())
    assert loaded.model.lr == 0.001  # an instance is used as given (its own arguments)


@pytest.mark.parametrize(("option", "value"), [("lr", 1e-4), ("task_loss", F.nll_loss), ("fuse_forward", False), ("lrr", 3)])
def test_wrap_refuses_options_it_would_ignore(option, value):
    with pytest.raises(MisconfigurationException, match=rf"wrap to be among \['unpack_batch', 'output', 'explain', 'setup_inputs'\] but got {option}=.*configure_optimizers"):
        CausalRepairModule.wrap(_Mine(), _terms(), **{option: value})


class _HparamsLogger(pl.loggers.Logger):
    def __init__(self) -> None:
        super().__init__()
        self.hparams: list[dict] = []

    name, version = "spy", 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        self.hparams.append(dict(params))

    def log_metrics(self, metrics, step=None) -> None:
        pass


def test_a_wrap_fit_logs_the_wrapped_modules_hyper_parameters_as_unwrapped(tmp_path):
    logged = {}
    for wrapped in (False, True):
        spy = _HparamsLogger()
        inner = _Mine(hidden=6, lr=0.3)
        trainer = pl.Trainer(max_epochs=1, logger=spy, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, default_root_dir=tmp_path)
        trainer.fit(CausalRepairModule.wrap(inner, _terms()) if wrapped else inner, _data())
        logged[wrapped] = spy.hparams
    assert logged[True] == logged[False] == [{"hidden": 6, "lr": 0.3, "gamma": 0.5}]


class _WithObjects(_Mine):
    def __init__(self, hidden: int = 4, criterion: nn.Module | None = None) -> None:
        super().__init__(hidden=hidden)
        self.save_hyperparameters()  # a module among them (Lightning warns, and saves it)


def test_a_wrap_checkpoint_of_a_module_with_object_hyper_parameters_stays_readable_with_weights_only(tmp_path):
    with pytest.warns(UserWarning):  # Lightning's: 'criterion' is an instance of `nn.Module`
        inner = _WithObjects(hidden=5, criterion=nn.CrossEntropyLoss())
    path = _fit(CausalRepairModule.wrap(inner, _terms()), tmp_path)
    weights = CausalRepairModule.model_state_dict(path)  # torch.load(weights_only=True)
    assert torch.equal(weights["head.weight"], inner.head.weight)
    saved = torch.load(path, weights_only=True)["causal_repair"]["wrapped"]
    assert saved["hyper_parameters"] == {"hidden": 5, "lr": 0.05, "gamma": 0.5} and saved["unsaved"] == ["criterion"]
    with pytest.raises(MisconfigurationException, match=r"\['criterion'\] are objects.*model=_WithObjects\(\.\.\.\)"):
        CausalRepairModule.load_from_checkpoint(path, model=_WithObjects, terms=_terms())
    loaded = CausalRepairModule.load_from_checkpoint(path, model=_WithObjects(hidden=5), terms=_terms())
    assert torch.equal(loaded.model.head.weight, inner.head.weight)


def test_a_lightning_module_passed_as_the_model_is_warned_about_and_wrap_is_named():
    with pytest.warns(UserWarning, match=r"LightningModule _Mine.*`training_step` and `configure_optimizers` are not called.*wrap\(module, terms\)"):
        CausalRepairModule(_Mine(), _terms())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CausalRepairModule.wrap(_Mine(), _terms())  # the route that keeps them: no warning
        CausalRepairModule(_Mine().body, _terms())  # a plain network: no warning
