"""A ``probe=`` of more samples than ``probe_size`` was audited on its first ``probe_size`` without a word (a
fairness user passed 1,000 rows of UCI Adult and compared the audit's gap with a brute force on 1,000: it
was computed on 256; the newuser9 trial). Set-up now says how many of how many, and how to audit all."""

from __future__ import annotations

import logging

import pytest
import torch

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.audits.base import Probe
from lightning_causal.callbacks._probe import given_samples
from tests.helpers.lightning import classifier, digits, loaders, trainer


def _notes(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "samples of `probe`" in r.getMessage()]


@pytest.mark.parametrize("size, expected", [(16, ["CausalAuditCallback audits the first 16 of the 40 samples of `probe` "
                                                  "(`probe_size=16`); pass `probe_size=40` to audit them all"]),
                                            (40, []), (64, [])])
def test_a_probe_cut_to_probe_size_is_said(tmp_path, caplog, size, expected):
    x, y, _, _ = digits()
    callback = CausalAuditCallback([InputEffectAudit(patch_size=4)], probe=(x[:40], y[:40]), probe_size=size)
    with caplog.at_level(logging.INFO):
        trainer(tmp_path, max_epochs=1, callbacks=[callback], limit_train_batches=1, limit_val_batches=1).fit(classifier(), *loaders())
    assert _notes(caplog) == expected
    assert len(callback.probe) == min(size, 40)


def test_the_validation_data_cut_to_probe_size_is_not_noted(tmp_path, caplog):
    callback = CausalAuditCallback([InputEffectAudit(patch_size=4)], probe_size=8)  # the documented default source
    with caplog.at_level(logging.INFO):
        trainer(tmp_path, max_epochs=1, callbacks=[callback], limit_train_batches=1, limit_val_batches=1).fit(classifier(), *loaders())
    assert _notes(caplog) == []


def test_given_samples_counts_what_can_be_counted_without_reading():
    x = torch.zeros(7, 2)
    assert given_samples(Probe(x)) == 7 and given_samples(x) == 7 and given_samples({"x": x, "y": torch.zeros(7)}) == 7
    assert given_samples(torch.utils.data.TensorDataset(x)) == 7
    assert given_samples(torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x))) is None  # a sampler may select
