"""The callback shows a warning whose figures move between audit epochs once per fit by its kind, and every rows-beyond-
rounding warning had one kind: in a fit with two audits, the second audit's (with its own way out) was hidden for the
whole fit. The kind names what the warning is about too: each audit says its own once per fit."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, CounterfactualAudit, FairnessAudit
from lightning_causal.causal import AttributeFlip
from tests.callbacks.test_review_lo39a_figured_warnings_once import _Drifts
from tests.causal.test_leftovers_s39a_clean_rows_beyond_rounding import _BatchResidual, _probe


def test_two_audits_each_say_their_rows_beyond_rounding_once_per_fit(tmp_path) -> None:
    x = _probe()
    data = DataLoader(TensorDataset(x, torch.arange(len(x)) % 2), batch_size=len(x))
    audits = [FairnessAudit(AttributeFlip(3), sensitive=3, output=lambda o: o[:, :1]),
              CounterfactualAudit(name="cf", output=lambda o: o[:, :2])]
    callback = CausalAuditCallback(audits, probe_size=len(x), every_n_epochs=1)
    trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[callback], default_root_dir=tmp_path)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        trainer.fit(_Drifts(_BatchResidual(tol=1e-3)), data, data)
    assert callback.audited_epochs == [0, 1, 2]
    said = [str(w.message) for w in seen if "to float rounding, but the outputs of probe samples" in str(w.message)]
    assert len(said) == 2, said  # the second audit's was hidden for the whole fit: 1
    assert sum("fairness" in s for s in said) == 1 and sum("'cf'" in s for s in said) == 1  # one each (set-up's)
