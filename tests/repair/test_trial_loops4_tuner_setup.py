"""The repair terms' set-up under Lightning's tuner (loops4): ``Tuner(trainer).lr_find(repair)`` followed by
``trainer.fit(repair)`` set the terms up twice, once for the search's fit and once for the real fit, on the same
pre-repair weights (the search restores them): a ``BackdoorSuppressionTerm(trigger=None)`` ran Neural Cleanse and
its contrastive run twice (measured on a digits CNN: 155 s and 50 s on a loaded 2-core CPU). The real fit now
reuses the search's set-up when the weights, the training inputs and the term's options are those it ran on, and
sets up again otherwise; the weights it gives are those of the same fit with a fresh set-up."""

import warnings

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import BatchSizeFinder, LearningRateFinder
from lightning.pytorch.tuner import Tuner
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.repair import BackdoorSuppressionTerm, CausalRepairModule


@pytest.fixture
def setups(monkeypatch):
    """The ``model``'s first bias each ``BackdoorSuppressionTerm.setup`` ran on, one entry a call (a spy)."""
    calls = []
    setup = BackdoorSuppressionTerm.setup

    def spy(self, model, train_inputs=None):
        calls.append(float(model[0].bias[0]))
        setup(self, model, train_inputs)

    monkeypatch.setattr(BackdoorSuppressionTerm, "setup", spy)
    return calls


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(64, 1, 6, 6, generator=g)
    return x, (x[:, 0, :3].mean((1, 2)) * 3).long().clamp(max=2)


def _repair():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(72, 3))
    term = BackdoorSuppressionTerm(trigger=None, reverse_options={"steps": 5}, contrast=False, when_unflagged="top")
    return CausalRepairModule(net, [term], lr=1e-2)


def _trainer(tmp_path, **kwargs):
    return pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, accelerator="cpu", default_root_dir=tmp_path, **kwargs)


def _lr_find_then_fit(tmp_path, between=lambda repair: None, fit_loader=None):
    pl.seed_everything(0, verbose=False)
    repair = _repair()
    loader = DataLoader(TensorDataset(*_data()), batch_size=16, shuffle=True)
    trainer = _trainer(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Tuner(trainer).lr_find(repair, loader, num_training=4)
        between(repair)
        trainer.fit(repair, fit_loader or loader)
    return repair


def test_lr_find_then_fit_sets_the_terms_up_once_with_the_weights_of_a_fresh_set_up(tmp_path, setups):
    repair = _lr_find_then_fit(tmp_path)
    assert len(setups) == 1  # before: 2, the search's set-up and the fit's, on the same weights
    assert repair._setup_records == {}  # dropped when the fit ends
    fresh = _lr_find_then_fit(tmp_path, between=lambda r: r._setup_records.clear())  # the fit sets up afresh
    assert len(setups) == 3 and setups[1] == setups[2] == setups[0]
    (term,), (fresh_term,) = repair.terms, fresh.terms
    assert [t.target for t in term.triggers] == [t.target for t in fresh_term.triggers] == [2]
    assert all(torch.equal(a.mask, b.mask) and torch.equal(a.pattern, b.pattern)
               for a, b in zip(term.triggers, fresh_term.triggers))
    assert all(torch.equal(a, b) for a, b in zip(repair.model.state_dict().values(), fresh.model.state_dict().values()))
    assert all(torch.equal(a, b) for a, b in zip(term.reference.state_dict().values(),
                                                 fresh_term.reference.state_dict().values()))


def test_the_fit_sets_up_again_when_the_weights_the_data_or_the_term_differ(tmp_path, setups):
    def nudge(repair):
        with torch.no_grad():
            repair.model[0].bias[0] += 1e-3

    repair = _lr_find_then_fit(tmp_path, between=nudge)
    assert len(setups) == 2 and setups[1] == pytest.approx(setups[0] + 1e-3)
    assert float(repair.terms[0].reference[0].bias[0]) == setups[1]  # the reference is the nudged model
    other = DataLoader(TensorDataset(*_data(seed=1)), batch_size=16, shuffle=True)
    _lr_find_then_fit(tmp_path, fit_loader=other)
    assert len(setups) == 4

    def new_options(repair):
        repair.terms[0].reverse_options = {"steps": 6}

    _lr_find_then_fit(tmp_path, between=new_options)
    assert len(setups) == 6

    def new_term(repair):
        repair.terms[0] = BackdoorSuppressionTerm(trigger=None, reverse_options={"steps": 5}, contrast=False,
                                                  when_unflagged="top")

    _lr_find_then_fit(tmp_path, between=new_term)
    assert len(setups) == 8


class _Data(pl.LightningDataModule):
    def __init__(self) -> None:
        super().__init__()
        self.batch_size = 4
        self.x, self.y = _data()

    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x, self.y), batch_size=self.batch_size)

    def val_dataloader(self):  # BatchSizeFinder scales the validation loader's batch size too
        return DataLoader(TensorDataset(self.x[:8], self.y[:8]), batch_size=self.batch_size)


@pytest.mark.parametrize("finder", [lambda: LearningRateFinder(num_training_steps=4),
                                    lambda: BatchSizeFinder(steps_per_trial=1, max_trials=2)],
                         ids=["LearningRateFinder", "BatchSizeFinder"])
def test_a_finder_callback_at_fit_start_sets_the_terms_up_once(tmp_path, setups, finder):
    pl.seed_everything(0, verbose=False)
    repair = _repair()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _trainer(tmp_path, callbacks=[finder()]).fit(repair, datamodule=_Data())
    assert len(setups) == 1  # before: 2, the search's and the fit's


class _Inner(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.lr = 1e-2
        self.net = _repair().model
        self.ended = 0

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def on_fit_end(self) -> None:
        self.ended += 1


def test_a_wrapped_module_under_lr_find_is_set_up_once_and_its_own_fit_end_still_runs(tmp_path, monkeypatch):
    calls = []
    setup = BackdoorSuppressionTerm.setup
    monkeypatch.setattr(BackdoorSuppressionTerm, "setup", lambda self, model, x=None: (calls.append(1), setup(self, model, x)))
    pl.seed_everything(0, verbose=False)
    inner = _Inner()
    term = BackdoorSuppressionTerm(trigger=None, reverse_options={"steps": 5}, contrast=False, when_unflagged="top")
    wrapped = CausalRepairModule.wrap(inner, [term])
    loader = DataLoader(TensorDataset(*_data()), batch_size=16)
    trainer = _trainer(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Tuner(trainer).lr_find(wrapped, loader, num_training=4)
        assert len(calls) == 1 and list(wrapped._setup_records) == ["backdoor_suppression"]
        trainer.fit(wrapped, loader)
    assert len(calls) == 1  # before: 2
    assert wrapped._setup_records == {} and inner.ended == 1  # the wrap's part of on_fit_end, then the module's
