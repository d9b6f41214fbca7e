"""CausalRepairModule in Lightning's life cycle: training inputs read without moving any random
stream, prediction, checkpoints (loading, the inner model's weights, resuming with the terms' state)."""

import os
import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lightning_causal.causal import AttributeFlip
from lightning_causal.causal.backdoor.flagging import ReversedTriggers
from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm
from lightning_causal.repair.base import RepairTerm
from lightning_causal.repair.fairness import CounterfactualFairnessTerm
from lightning_causal.repair.module import CausalRepairModule


class _Plain(pl.LightningModule):
    def __init__(self, lr: float = 1e-2) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
        self.lr = lr

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def predict_step(self, batch, batch_idx):
        return self(batch[0]).softmax(-1)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class _NeedsInputs(RepairTerm):
    """A term whose setup reads the training inputs (and keeps them)."""

    def setup(self, model, train_inputs=None):
        self.seen = train_inputs

    def loss(self, model, x, y):
        return model(x).pow(2).mean()


class _Augmenting(Dataset):
    def __init__(self) -> None:
        self.x = torch.randn(128, 4, generator=torch.Generator().manual_seed(1))
        self.x[:, 0] = (self.x[:, 0] > 0).float()
        self.y = (self.x[:, 1] + self.x[:, 0] > 0.5).long()
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i] + 0.01 * torch.from_numpy(self.rng.normal(size=4).astype("float32")), self.y[i]


def _trainer(**kw) -> pl.Trainer:
    defaults = dict(max_epochs=1, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                    enable_model_summary=False, accelerator="cpu", devices=1)
    defaults.update(kw)
    return pl.Trainer(**defaults)


def _fit(make, dataset):
    pl.seed_everything(0, verbose=False)
    inner = _Plain()
    loader = DataLoader(dataset, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(123))
    _trainer().fit(make(inner), loader)
    return [p.detach().clone() for p in inner.parameters()]


def _weight0():
    return [CounterfactualFairnessTerm(AttributeFlip(0), weight=0.0), _NeedsInputs(weight=0.0, name="needs")]


@pytest.mark.parametrize("dataset", ["tensors", "augmenting"])
def test_weight_0_terms_leave_training_bit_identical_with_a_seeded_loader_and_a_dataset_rng(dataset):
    make_data = (lambda: TensorDataset(_Augmenting().x, _Augmenting().y)) if dataset == "tensors" else _Augmenting
    plain = _fit(lambda m: m, make_data())
    direct = _fit(lambda m: CausalRepairModule(m.net, _weight0(), lr=1e-2), make_data())
    wrapped = _fit(lambda m: CausalRepairModule.wrap(m, _weight0()), make_data())
    assert all(torch.equal(a, b) for a, b in zip(plain, direct))
    assert all(torch.equal(a, b) for a, b in zip(plain, wrapped))


def test_train_inputs_are_read_only_for_terms_that_need_them():
    x, y = _Augmenting().x, _Augmenting().y
    needs, fair = _NeedsInputs(name="needs"), CounterfactualFairnessTerm(AttributeFlip(0), weight=0.0)
    assert needs.needs_train_inputs and not fair.needs_train_inputs
    assert not BackdoorSuppressionTerm(Trigger(torch.ones(4), 1.0, 0)).needs_train_inputs
    assert BackdoorSuppressionTerm().needs_train_inputs
    class NewPass(pl.Callback):  # runs before the module's on_train_start
        def on_train_start(self, trainer, pl_module):
            loader, state = trainer.train_dataloader, trainer.train_dataloader.generator.get_state()
            self.expected = torch.cat([b[0] for b in loader])
            loader.generator.set_state(state)

    spy = NewPass()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(5))
    _trainer(callbacks=[spy]).fit(CausalRepairModule(_Plain().net, [needs, fair]), loader)
    assert torch.equal(needs.seen, spy.expected)  # the batches a new pass over the loader would yield, in order


def test_predict_direct_and_wrapped():
    x, y = _Augmenting().x, _Augmenting().y
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    inner = _Plain()
    wrapped = _trainer().predict(CausalRepairModule.wrap(inner, _weight0()), loader)
    torch.testing.assert_close(torch.cat(wrapped), inner(x).softmax(-1))  # the wrapped module's predict_step
    direct = _trainer().predict(CausalRepairModule(inner.net, _weight0()), loader)
    torch.testing.assert_close(torch.cat(direct), inner.net(x))  # the model's output on the inputs


def test_checkpoint_loading_and_the_inner_models_weights(tmp_path):
    x, y = _Augmenting().x, _Augmenting().y
    inner = _Plain()
    trainer = _trainer(default_root_dir=tmp_path, enable_checkpointing=True)
    trainer.fit(CausalRepairModule.wrap(inner, _weight0()), DataLoader(TensorDataset(x, y), batch_size=32))
    path = trainer.checkpoint_callback.best_model_path
    with pytest.raises(MisconfigurationException, match=r"argument `model`.*load_from_checkpoint\(path, model=MyNet\(\)"):
        CausalRepairModule.load_from_checkpoint(path)
    loaded = CausalRepairModule.load_from_checkpoint(path, model=_Plain(), terms=_weight0())
    mine = _Plain()
    mine.load_state_dict(CausalRepairModule.model_state_dict(path))
    for a, b, c in zip(inner.parameters(), loaded.model.parameters(), mine.parameters()):
        assert torch.equal(a, b) and torch.equal(a, c)
    with pytest.raises(MisconfigurationException, match="`checkpoint` to be a checkpoint path or a mapping"):
        CausalRepairModule.model_state_dict(3)
    with pytest.raises(MisconfigurationException, match="weights under 'model.'"):
        CausalRepairModule.model_state_dict({"state_dict": {"net.weight": torch.zeros(1)}})


def _digits_like():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(128, 1, 6, 6, generator=g)
    return x, (x[:, 0, :3].mean((1, 2)) > 0.5).long()


def _backdoor_fit(max_epochs, ckpt_path=None, dirpath=None):
    pl.seed_everything(0, verbose=False)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(72, 2))
    initial = [p.detach().clone() for p in net.parameters()]
    mask = torch.zeros(1, 6, 6)
    mask[:, -2:, -2:] = 1.0
    term = BackdoorSuppressionTerm(Trigger(mask, 1.0, 0))
    x, y = _digits_like()
    callbacks = [ModelCheckpoint(dirpath=dirpath, save_last=True)] if dirpath else []
    _trainer(max_epochs=max_epochs, callbacks=callbacks, enable_checkpointing=bool(dirpath)).fit(
        CausalRepairModule(net, [term], lr=1e-2), DataLoader(TensorDataset(x, y), batch_size=32), ckpt_path=ckpt_path)
    return [p.detach().clone() for p in net.parameters()], term, initial


def test_a_resumed_fit_restores_the_terms_state_and_equals_the_uninterrupted_fit(tmp_path):
    full, _, _ = _backdoor_fit(2)
    _backdoor_fit(1, dirpath=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resumed, term, initial = _backdoor_fit(2, ckpt_path=os.path.join(tmp_path, "last.ckpt"))
    assert all(torch.equal(a, b) for a, b in zip(full, resumed))
    assert all(torch.equal(a, b) for a, b in zip(term.reference.parameters(), initial))  # the model before repair


class _Counted(_NeedsInputs):
    def __init__(self, calls: list) -> None:
        super().__init__(name="counted")
        self.calls = calls

    def setup(self, model, train_inputs=None):
        self.calls.append(train_inputs.shape[0])


def test_terms_without_state_are_set_up_again_on_resume(tmp_path):
    x, y = _Augmenting().x, _Augmenting().y
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    calls = []
    _trainer(callbacks=[ModelCheckpoint(dirpath=tmp_path, save_last=True)], enable_checkpointing=True).fit(
        CausalRepairModule(_Plain().net, [_Counted(calls)]), loader)
    resumed = CausalRepairModule(_Plain().net, [_Counted(calls)])
    _trainer(max_epochs=2).fit(resumed, loader, ckpt_path=os.path.join(tmp_path, "last.ckpt"))
    assert calls == [128, 128]  # state_dict None: setup runs again, with the training inputs


def test_backdoor_term_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    model = nn.Linear(4, 3)
    soft = [Trigger(torch.full((4,), 0.1 * (c + 1)), torch.ones(4), c) for c in range(3)]
    term = BackdoorSuppressionTerm()  # the state setup(trigger=None) leaves, set by hand
    term.detection = ReversedTriggers(soft, torch.tensor([0.1, 3.0, 0.2]), torch.tensor([0.4, 0.1, 0.4]),
                                      torch.ones(3), torch.ones(3), max_ratio=0.5)
    term.triggers = [soft[1]]
    term.reference = nn.Linear(4, 3)
    term._generator = torch.Generator().manual_seed(7)
    torch.rand(3, generator=term._generator)
    torch.save(term.state_dict(), tmp_path / "term.pt")
    state = torch.load(tmp_path / "term.pt", weights_only=True)
    again = BackdoorSuppressionTerm()
    again.load_state_dict(state, model)
    assert again.detection.flagged == term.detection.flagged and torch.equal(again.detection.score, term.detection.score)
    assert [t.target for t in again.triggers] == [1] and torch.equal(again.triggers[0].mask, soft[1].mask)
    assert torch.equal(again.reference.weight, term.reference.weight) and not again.reference.weight.requires_grad
    assert torch.equal(torch.rand(3, generator=again._generator), torch.rand(3, generator=term._generator))
    with pytest.raises(NotImplementedError, match="does not implement `load_state_dict`"):
        type("_Half", (_NeedsInputs,), {"state_dict": lambda self: {}})().load_state_dict({}, model)


class _ManualRepair(CausalRepairModule):
    """A subclass that turns automatic optimization off (as a user may, e.g. for several optimizers)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False


class _ManualRepairStepping(_ManualRepair):
    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        total, _ = self.objective(batch, batch_idx)
        opt.zero_grad()
        self.manual_backward(total)
        opt.step()


def test_manual_optimization_with_the_default_training_step_is_refused_not_silently_untrained():
    x, y = _Augmenting().x, _Augmenting().y
    loader = DataLoader(TensorDataset(x, y), batch_size=32)
    module = _ManualRepair(_Plain().net, [CounterfactualFairnessTerm(AttributeFlip(0), weight=1.0)])
    # before the fix: the fit ran and no weight changed (Lightning ignores the loss returned under manual optimization)
    with pytest.raises(MisconfigurationException, match=r"automatic_optimization=False.*objective\(batch, batch_idx\)"):
        _trainer().fit(module, loader)


def test_manual_optimization_through_objective_equals_automatic_optimization():
    x, y = _Augmenting().x, _Augmenting().y
    weights = []
    for cls in (CausalRepairModule, _ManualRepairStepping):
        pl.seed_everything(0, verbose=False)
        module = cls(_Plain().net, [CounterfactualFairnessTerm(AttributeFlip(0), weight=1.0)], lr=1e-2)
        _trainer().fit(module, DataLoader(TensorDataset(x, y), batch_size=32))
        weights.append([p.detach().clone() for p in module.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))


class _PlainWithValidation(_Plain):
    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        self.log("val_loss", F.cross_entropy(self(batch[0]), batch[1]))


@pytest.mark.parametrize("wrapped", [False, True])
def test_two_validation_dataloaders_are_accepted_and_each_gets_its_val_loss(wrapped):
    x, y = _Augmenting().x, _Augmenting().y
    loaders = [DataLoader(TensorDataset(x[:64], y[:64]), batch_size=64), DataLoader(TensorDataset(x[64:], y[64:]), batch_size=64)]
    inner = _PlainWithValidation()
    module = CausalRepairModule.wrap(inner, _weight0()) if wrapped else CausalRepairModule(inner.net, _weight0())
    # before the fix: RuntimeError "You provided multiple `val_dataloader`, but no `dataloader_idx` argument in
    # `CausalRepairModule.validation_step()`" (also for a wrapped module whose own validation_step takes it)
    out = _trainer().validate(module, loaders, verbose=False)
    with torch.no_grad():
        expected = [F.cross_entropy(inner.net(x[:64]), y[:64]), F.cross_entropy(inner.net(x[64:]), y[64:])]
    for i, (metrics, value) in enumerate(zip(out, expected)):
        assert metrics[f"val_loss/dataloader_idx_{i}"] == pytest.approx(float(value), abs=1e-6)


def test_testing_a_wrapped_module_without_test_step_is_an_error_not_empty_metrics():
    x, y = _Augmenting().x, _Augmenting().y
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    wrapped = CausalRepairModule.wrap(_Plain(), _weight0())  # _Plain defines neither validation_step nor test_step
    # before the fix: trainer.test returned [{}] (the wrapper's test_step called Lightning's empty default)
    with pytest.raises(MisconfigurationException, match=r"No `test_step\(\)` method defined on the wrapped module _Plain"):
        _trainer().test(wrapped, loader, verbose=False)
    with pytest.raises(MisconfigurationException, match=r"No `validation_step\(\)`.*`Trainer.validate`"):
        _trainer().validate(wrapped, loader, verbose=False)
    _trainer(max_epochs=1).fit(wrapped, loader, loader)  # fit with validation data: the missing step does nothing, as unwrapped
    assert wrapped.trainer.state.finished
