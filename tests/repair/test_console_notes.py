"""The repair's set-up notes beside Lightning's progress bar: ``CausalRepairModule``'s and its terms' (Neural Cleanse's
"flagged class(es) ...") went through ``rank_zero_info`` at ``on_train_start``, when the bar already shows, and were
appended to the bar's line (the garbling 3514475 mended for the callback's lines; the review of the change). A term's
``setup`` has no trainer: ``console_info`` writes through the bar of the fit that ``console_of`` names, and as
Lightning's own messages outside a fit."""

from __future__ import annotations

import logging

import tqdm
from lightning.pytorch.callbacks import TQDMProgressBar
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule
from lightning_causal._console import console_info
from lightning_causal.datasets import make_synthetic_fairness
from lightning_causal.models import MLP
from lightning_causal.repair import RepairTerm
from tests.helpers.lightning import trainer

NOTE = "a term's set-up note"


class _Noting(RepairTerm):
    def setup(self, model, train_inputs=None):
        console_info(NOTE)

    def loss(self, model, x, y):
        return model(x).pow(2).mean()


def test_a_terms_set_up_note_goes_through_the_progress_bar(tmp_path, monkeypatch, caplog):
    written = []
    monkeypatch.setattr(tqdm.tqdm, "write", classmethod(lambda cls, s, *a, **k: written.append(s)))
    data = make_synthetic_fairness(64, seed=0)
    repair = CausalRepairModule(MLP(4, (8,)), [_Noting()])
    t = trainer(tmp_path, max_epochs=1, callbacks=[TQDMProgressBar()], enable_progress_bar=True, limit_train_batches=1)
    with caplog.at_level(logging.INFO):
        t.fit(repair, DataLoader(TensorDataset(data.x, data.y), batch_size=32))
    assert written == [NOTE]  # cleared from the bar's line, the bar drawn again below it
    assert NOTE not in caplog.text  # not logged behind the bar as well


def test_outside_a_fit_the_note_is_one_of_lightnings_messages(caplog):
    with caplog.at_level(logging.INFO):
        _Noting().setup(MLP(4, (8,)))
    assert NOTE in caplog.text
