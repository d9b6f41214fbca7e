"""Federated averaging with Lightning (newuser70): K clients, a ``Trainer.fit`` per client per round on the averaged
weights, the audit callback reused across those fits.

A new ``Trainer`` per fit into one ``TensorBoardLogger`` counts epochs and steps from 0 again: every client-round's
scalars lay on the same steps, one series going back and forth in TensorBoard, and the warning said only that the
reports would be replaced. It now says that the TensorBoard run is shared too and how to keep fits apart, or to continue
one model's series (one Trainer per client, ``fit_loop.max_epochs`` raised each round), which these tests check works:
epochs, steps and reports go on, with no warning, and the audits leave the averaged weights bit-identical."""

from __future__ import annotations

import os
import warnings

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, UnitImportanceAudit


class _Client(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y, _client = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y, _client = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loaders(k: int) -> tuple[DataLoader, DataLoader]:
    """Client ``k``: a label mechanism of its own (non-IID), batches ``(x, y, client)``."""
    g = torch.Generator().manual_seed(k)
    x = torch.randn(48, 3, generator=g)
    y = (x[:, k % 3] - x[:, (k + 1) % 3] > 0).long()
    c = torch.full((48,), k)
    return (DataLoader(TensorDataset(x[:32], y[:32], c[:32]), batch_size=16, shuffle=True),
            DataLoader(TensorDataset(x[32:], y[32:], c[32:]), batch_size=16))


def _callback(units: bool = True) -> CausalAuditCallback:
    audits = [InputEffectAudit(ace_values=None)] + ([UnitImportanceAudit(["net.0"])] if units else [])
    return CausalAuditCallback(audits, unpack_batch=lambda b: (b[0], b[1], None), probe_size=8)


def _trainer(logger, callbacks, max_epochs: int = 1, root=None) -> pl.Trainer:
    return pl.Trainer(max_epochs=max_epochs, logger=logger, callbacks=callbacks, default_root_dir=root, enable_progress_bar=False,
                      enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0)


def _average(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: sum(s[k] for s in states) / len(states) for k in states[0]}


def test_a_new_trainer_per_fit_into_one_logger_is_told_that_tensorboard_mixes_the_fits(tmp_path):
    """The second client's fit (a new Trainer, the same logger): the warning names the shared TensorBoard run and the two
    ways out; before, it spoke of the JSON reports only."""
    logger = TensorBoardLogger(tmp_path, name="fl", version=0)
    callback = _callback(units=False)
    for k in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _trainer(logger, [callback]).fit(_Client(), *_loaders(k))
        said = [str(w.message) for w in caught if "already holds reports" in str(w.message)]
        if k == 0:
            assert not said
    assert len(said) == 1, said
    assert f"Its TensorBoard run, {logger.log_dir!r}, holds that run's values of those epochs too" in said[0]
    assert "from step 0" in said[0]
    assert "TensorBoardLogger(save_dir, name=..., version=...)" in said[0]
    assert "raise `trainer.fit_loop.max_epochs` before the next `fit`" in said[0]


def test_reports_elsewhere_than_the_logger_say_nothing_of_tensorboard(tmp_path):
    """A ``report_dir`` of one's own reused by two fits, each with a logger of its own: the reports are replaced, the
    TensorBoard runs are not shared, and the warning says nothing of them."""
    for k in range(2):
        callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], unpack_batch=lambda b: (b[0], b[1], None),
                                       probe_size=8, report_dir=str(tmp_path / "reports"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _trainer(TensorBoardLogger(tmp_path, name=f"client_{k}"), [callback]).fit(_Client(), *_loaders(k))
    said = [str(w.message) for w in caught if "already holds reports" in str(w.message)]
    assert len(said) == 1 and "TensorBoard" not in said[0], said


def _fedavg(tmp_path, with_audits: bool, rounds: int = 2, clients: int = 2) -> tuple[dict, list]:
    """FedAvg as the warning advises: one Trainer, logger and callback per client, kept over the rounds."""
    pl.seed_everything(0)
    models = [_Client() for _ in range(clients)]
    average = {k: v.clone() for k, v in models[0].state_dict().items()}
    callbacks = [_callback(units=False) if with_audits else None for _ in range(clients)]
    trainers = [_trainer(TensorBoardLogger(tmp_path, name=f"client_{k}", version=0) if with_audits else False,
                         [callbacks[k]] if with_audits else [], max_epochs=0) for k in range(clients)]
    for r in range(rounds):
        states = []
        for k in range(clients):
            models[k].load_state_dict(average)
            trainers[k].fit_loop.max_epochs = r + 1  # one local epoch per round, counted on
            trainers[k].fit(models[k], *_loaders(k))
            states.append({name: v.clone() for name, v in models[k].state_dict().items()})
        average = _average(states)
    return average, trainers


def test_fedavg_with_one_trainer_per_client_goes_on_and_leaves_the_weights_bit_identical(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audited, trainers = _fedavg(tmp_path / "audited", with_audits=True)
    assert not [w for w in caught if "already holds reports" in str(w.message)]
    plain, _ = _fedavg(tmp_path / "plain", with_audits=False)
    assert all(torch.equal(audited[k], plain[k]) for k in plain)  # the audits change no local fit
    run = tmp_path / "audited" / "client_0" / "version_0"
    assert sorted(os.listdir(run / "causal_audit")) == [f"epoch_{e:04d}.json" for e in range(2)]
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    steps = [e.step for e in events.Scalars("causal/input_effect/mean_abs_effect")]
    assert steps == sorted(set(steps)) and len(steps) == 2, steps  # one value per epoch, rounds one after another
    assert trainers[0].current_epoch == 2 and trainers[0].global_step == 4


@pytest.mark.parametrize("reuse", [False, True])
def test_a_callback_reused_over_clients_gives_each_fit_what_a_fresh_one_gives(tmp_path, reuse):
    """No state of one client's fit (a probe, a previous audit for the drift scalars) reaches the next client's: the
    second client's scalars equal those of a fresh callback on that fit."""
    first = _callback()
    pl.seed_everything(0)
    _trainer(False, [first], root=tmp_path).fit(_Client(), *_loaders(0))
    second = first if reuse else _callback()
    pl.seed_everything(1)
    _trainer(False, [second], max_epochs=2, root=tmp_path).fit(_Client(), *_loaders(1))
    fresh = _callback()
    pl.seed_everything(1)
    _trainer(False, [fresh], max_epochs=2, root=tmp_path / 'fresh').fit(_Client(), *_loaders(1))
    got = {k: v for k, v in second.last_scalars.items() if "seconds" not in k}
    want = {k: v for k, v in fresh.last_scalars.items() if "seconds" not in k}
    assert got == want


class _AveragedInOne(pl.LightningModule):
    """Federated averaging inside one module: two local copies trained on their clients' rows of each batch, averaged
    into the audited ``global_net`` in the module's ``on_train_epoch_end``, which Lightning calls after the callbacks'."""

    def __init__(self, average: bool = True) -> None:
        super().__init__()
        self.global_net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
        self.local = nn.ModuleList([nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2)) for _ in range(2)])
        self.average = average

    @property
    def audited_module(self):
        return self.global_net

    def forward(self, x):
        return self.global_net(x)

    def training_step(self, batch, batch_idx):
        x, y, client = batch
        return sum(F.cross_entropy(self.local[k](x[client == k]), y[client == k]) for k in range(2))

    def on_train_epoch_end(self):
        if self.average:
            with torch.no_grad():
                for name, p in self.global_net.named_parameters():
                    p.copy_(torch.stack([dict(net.named_parameters())[name] for net in self.local]).mean(0))

    def configure_optimizers(self):
        return torch.optim.SGD(self.local.parameters(), lr=0.1)


def _two_clients() -> DataLoader:
    (a, _), (b, _) = _loaders(0), _loaders(1)
    return DataLoader(torch.utils.data.ConcatDataset([a.dataset, b.dataset]), batch_size=16, shuffle=True)


def _said(module, max_epochs, callbacks=None, tmp_path=None, before=()) -> list[str]:
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], unpack_batch=lambda b: (b[0], b[1], None), probe_size=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _trainer(False, [*before, callback, *(callbacks or [])], max_epochs=max_epochs, root=tmp_path).fit(module, _two_clients())
    return [str(w.message) for w in caught if "changed after the audit" in str(w.message)]


@pytest.mark.parametrize("max_epochs, where", [(3, "at the start of epoch 1"), (1, "at the end of training")])
def test_weights_averaged_in_the_modules_epoch_end_are_said_to_be_unexplained(tmp_path, max_epochs, where):
    """The module's own ``on_train_epoch_end`` averages the clients' copies into the audited network after each audit:
    every audit explained the weights before the averaging, the final averaged ones never, silently. Now said once
    per fit, when the next epoch starts (or training ends) with weights other than those the audit read."""
    said = _said(_AveragedInOne(), max_epochs, tmp_path=tmp_path)
    assert len(said) == 1, said
    assert f"changed after the audit of epoch 0 with no training step since ({where})" in said[0]
    assert "`on_train_batch_end`" in said[0] and "audit_model" in said[0]


def test_an_epoch_end_that_changes_no_weight_and_weight_averaging_are_not_warned_about(tmp_path):
    from lightning.pytorch.callbacks import StochasticWeightAveraging

    assert _said(_AveragedInOne(average=False), 2, tmp_path=tmp_path) == []
    assert _said(_Client(), 2, tmp_path=tmp_path) == []  # a plain fit
    # StochasticWeightAveraging copies its average in when training ends (warned of elsewhere where it matters)
    assert _said(_Client(), 2, [StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=1)], tmp_path=tmp_path) == []
    # listed before the callback, it copies its average in before the callback's end-of-training check reads them
    assert _said(_Client(), 2, before=[StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=1)], tmp_path=tmp_path) == []
