"""The schedule arguments of CausalAuditCallback as a new user writes them (newuser54 trial): values the constructor
took and then failed on with Python's bare errors (``epochs=3``: "'int' object is not iterable"; ``epochs=[1, '2']``:
"'<' not supported between instances of 'str' and 'int'"), a callable of the wrong signature that failed only at the
first epoch's end (after that epoch's training), a callable returning a value no bool can be read from, a non-bool
``on_fit_end`` taken silently, and a fit whose schedule audits nothing (``on_fit_end=False``) without a word."""

import warnings

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from tests.helpers.lightning import SgdMlp


def _callback(**schedule):
    return CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8, **schedule)


@pytest.mark.parametrize(("schedule", "words"), [
    (dict(epochs=3), r"`epochs` to be None or an iterable of non-negative ints .* but got 3"),
    (dict(epochs="3"), r"`epochs` to be None or an iterable of non-negative ints .* but got '3'"),
    (dict(epochs=[1, "2"]), r"`epochs` to hold non-negative ints .* but got \['2'\] in \[1, '2'\]"),
    (dict(epochs=[4, -1]), r"`epochs` to hold non-negative ints .* but got \[-1\] in \[4, -1\]"),
    (dict(every_n_epochs=lambda: True), r"`every_n_epochs` to be an int >= 1 or a callable of the epoch .* but got "
                                        r"<lambda>\(\)"),
    (dict(every_n_epochs=lambda epoch, total: True), r"`every_n_epochs` .* but got <lambda>\(epoch, total\)"),
    (dict(every_n_epochs=[0, 4]), r"`every_n_epochs` .* but got \[0, 4\]; to audit those epochs, pass `epochs=\[0, 4\]`"),
    (dict(on_fit_end="no"), r"`on_fit_end` to be a bool but got 'no'"),
    (dict(on_fit_end=None), r"`on_fit_end` to be a bool but got None"),
])
def test_a_bad_schedule_is_refused_at_construction_naming_the_argument(schedule, words):
    with pytest.raises(MisconfigurationException, match=words):
        _callback(**schedule)


@pytest.mark.parametrize("schedule", [
    dict(every_n_epochs=lambda epoch: epoch == 2), dict(every_n_epochs=lambda epoch, *rest: epoch == 2),
    dict(every_n_epochs=lambda *args: args[0] == 2), dict(every_n_epochs=lambda epoch, total=3: epoch == total - 1),
    dict(every_n_epochs={2: True}.get), dict(epochs=(e for e in [2, 2])), dict(epochs=range(2, 3)), dict(epochs={2}),
])
def test_the_forms_the_docs_give_are_taken(schedule):
    callback = _callback(**schedule)
    assert [e for e in range(5) if callback.should_audit(e)] == [2]


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 5, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 1).long()
    return DataLoader(TensorDataset(x[:24], y[:24]), batch_size=8), DataLoader(TensorDataset(x[24:], y[24:]), batch_size=8)


def _fit(callback, max_epochs):
    trainer = pl.Trainer(max_epochs=max_epochs, callbacks=[callback], logger=False, accelerator="cpu", devices=1,
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                         num_sanity_val_steps=0)
    trainer.fit(SgdMlp(), *_data())
    return trainer


def test_a_callable_returning_no_truth_value_names_the_schedule_and_the_epoch(tmp_path):
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8, report_dir=tmp_path,
                                   every_n_epochs=lambda epoch: torch.tensor([epoch, epoch + 1]) > 0)
    with pytest.raises(MisconfigurationException, match=r"schedule `every_n_epochs=<lambda>\(epoch\)` to return a bool at epoch 0 but it returned "
                       r"tensor\(\[False,  True\]\)") as err:
        _fit(callback, 1)
    assert isinstance(err.value.__cause__, RuntimeError)  # torch's own words, chained


@pytest.mark.parametrize(("schedule", "max_epochs", "said", "trained"), [
    (dict(epochs=[]), 2, "epochs=[]", "epochs 0 to 1"),
    (dict(epochs=[2, 5]), 2, "epochs=[2, 5]", "epochs 0 to 1"),
    (dict(every_n_epochs=3), 2, "every_n_epochs=3", "epochs 0 to 1"),
    (dict(every_n_epochs=2), 1, "every_n_epochs=2", "epoch 0"),
])
def test_a_fit_the_schedule_audits_nothing_of_warns_at_set_up(tmp_path, schedule, max_epochs, said, trained):
    callback = _callback(on_fit_end=False, report_dir=tmp_path, **schedule)
    with pytest.warns(UserWarning, match=r"audits no epoch of this fit") as record:
        _fit(callback, max_epochs)
    assert callback.audited_epochs == []  # as the warning said
    words = next(str(w.message) for w in record if "audits no epoch" in str(w.message))
    assert said in words and f"`max_epochs={max_epochs}` trains {trained} (epochs count from 0" in words


@pytest.mark.parametrize("schedule", [
    dict(epochs=[1], on_fit_end=False), dict(every_n_epochs=2, on_fit_end=False), dict(epochs=[], on_fit_end=True),
    dict(every_n_epochs=lambda epoch: False, on_fit_end=False),  # the user's code: not called at set-up
])
def test_a_schedule_auditing_an_epoch_of_the_fit_does_not_warn(tmp_path, schedule):
    callback = _callback(report_dir=tmp_path, **schedule)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _fit(callback, 2)
    assert not [w for w in record if "audits no epoch" in str(w.message)]
