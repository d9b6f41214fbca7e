"""An empty dataset where the audits read their probe was refused as "Expected a non-empty `probe` but got 0 samples"
also where the user passed no `probe=`: a fit whose first validation dataset is empty (the callback reads the
validation data; one empty validation set alone is a fit that validates on nothing, whose training data the callback
explains), and audit_model's `data`. The refusal names where the samples were read now, and what to pass."""

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, audit_model
from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks._probe import probe_from
from tests.helpers.lightning import trainer
from tests.repair.test_leftovers_s27_no_val_warning import _Plain
from tests.test_leftovers_s28b_empty_first_val import _Model


def _data(n: int) -> TensorDataset:
    return TensorDataset(torch.randn(n, 4, generator=torch.Generator().manual_seed(0)), torch.arange(n) % 2)


def test_an_empty_first_validation_set_is_passed_over_where_the_callback_reads_its_probe(tmp_path):
    # the first of several validation dataloaders reading no sample: a sampler that selects none of its 8 samples, as an
    # empty first dataset (leftovers_s28b: tests/test_leftovers_s28b_empty_first_val.py), is passed over for the next,
    # on which Lightning validates (review_s28e: tests/test_review_s28e_no_batch_val.py; an empty validation set alone
    # validates on nothing: the callback explains the training data, test_review_s27e_empty_val_fallback)
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8, report_dir=str(tmp_path / "reports"))
    trainer(tmp_path, max_epochs=1, callbacks=[cb]).fit(
        _Model(), DataLoader(_data(8), batch_size=4),
        [DataLoader(_data(8), sampler=[], batch_size=4), DataLoader(_data(8), batch_size=4)])
    assert cb.probe_origin == "val_dataloaders[1] of 2" and cb.audited_epochs == [0]


def test_an_empty_probe_is_refused_as_before():
    with pytest.raises(MisconfigurationException, match=r"^Expected a non-empty `probe` but got 0 samples$"):
        probe_from(_data(0), 8)


def test_audit_models_empty_data_is_named():
    with pytest.raises(MisconfigurationException, match=r"^Expected argument `data` to hold samples to explain but got 0 samples$"):
        audit_model(_Plain().net, InputEffectAudit(ace_values=None), _data(0))
