"""``copy.copy`` of a CausalAuditCallback shared its renderer, its warnings memory and its audits with the
original: two copies in one Trainer (the second given other audits) wrote their text cards through one renderer,
whose card number the later set-up overwrote (both cards at ``causal/summary_2``, none at ``causal/summary``), and
renaming a copy's audit renamed the original's (the two refused as audits of one name). A copy now has its own
audits (shallow copies), renderer and state, as a callback built with the same arguments."""

from __future__ import annotations

import copy

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from tests.helpers.lightning import SgdMlp


def _fit(tmp_path, callbacks) -> list[tuple[str, int]]:  # noqa: ANN001
    g = torch.Generator().manual_seed(0)
    data = DataLoader(TensorDataset(torch.randn(16, 4, generator=g), torch.randint(0, 2, (16,), generator=g)), batch_size=8)
    logger = TensorBoardLogger(tmp_path, name="copies")
    cards: list[tuple[str, int]] = []
    add_text = logger.experiment.add_text

    def recorded(tag, text, step=None, *args, **kwargs):  # noqa: ANN001, ANN202
        cards.append((tag, step))
        return add_text(tag, text, step, *args, **kwargs)

    logger.experiment.add_text = recorded
    trainer = pl.Trainer(max_epochs=2, logger=logger, callbacks=callbacks, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, log_every_n_steps=1)
    torch.manual_seed(0)
    trainer.fit(SgdMlp(features=4), data, data)
    return cards


def test_two_copies_in_one_fit_keep_their_own_cards_and_state(tmp_path):
    first = CausalAuditCallback([InputEffectAudit(ace_values=None, name="a")], probe_size=8)
    second = copy.copy(first)
    second.audits = [InputEffectAudit(ace_values=None, name="b")]
    assert second._renderer is not first._renderer and second._warnings is not first._warnings
    cards = _fit(tmp_path, [first, second])
    assert sorted(tag for tag, _ in cards) == ["causal/summary"] * 2 + ["causal/summary_2"] * 2  # before: 4 x summary_2
    assert first.audited_epochs == second.audited_epochs == [0, 1]
    assert list(first.last_results) == ["a"] and list(second.last_results) == ["b"]


def test_a_copys_audits_are_its_own(tmp_path):
    first = CausalAuditCallback([InputEffectAudit(ace_values=None, name="a")], probe_size=8, every_n_epochs=2)
    second = copy.copy(first)
    second.audits[0].name = "b"  # renamed the original's audit too before: refused as one name in two callbacks
    assert [a.name for a in first.audits] == ["a"] and second.every_n_epochs == 2
    assert type(second.audits[0]) is InputEffectAudit and second.audits[0].ace_values is None
    _fit(tmp_path, [first, second])
    assert first.audited_epochs == second.audited_epochs == [1]
    assert first.state_key != second.state_key
