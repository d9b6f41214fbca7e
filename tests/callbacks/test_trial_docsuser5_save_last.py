"""AuditModelCheckpoint(save_last=True) saves ``last.ckpt`` at every audited epoch, as docs/recipes.md
("Monitoring with sparse schedules") and examples/config_fairness_repair.yaml (resume from ``last.ckpt``) say.

Found by a docs trial (docsuser5: the repair config run as printed, Lightning 2.6.6): the fit audited epochs 1, 3,
5, 7, 9 and stopped early at 9, but ``last.ckpt`` held epoch 5, the best one: since Lightning 2.6, ModelCheckpoint
saves ``last`` only at an epoch where it saved a top-k checkpoint, so a resume from ``last.ckpt`` went back to
epoch 5."""

from __future__ import annotations

import torch

from lightning_causal import AuditModelCheckpoint
from tests.callbacks.test_monitoring import TAG, _fit

# audits at epochs 2, 5, 8, 11: the best is the first (1.0 at epoch 2), the later ones are worse
WORSE = [0.1, 0.5, 0.6, 0.7]


def _epoch(path):
    return torch.load(path, weights_only=True, map_location="cpu")["epoch"]


def test_last_checkpoint_is_the_last_audited_epoch_when_later_audits_do_not_improve(tmp_path):
    ckpt = AuditModelCheckpoint(TAG, tmp_path / "ck", mode="min", save_last=True)
    t, cb = _fit(tmp_path, ckpt, script=WORSE, max_epochs=12)
    assert cb.audited_epochs == [2, 5, 8, 11]
    assert _epoch(ckpt.best_model_path) == 2  # the best audited epoch, kept
    assert ckpt.last_model_path.endswith("last.ckpt")
    assert _epoch(ckpt.last_model_path) == 11  # the last audited epoch (before: 2, saved beside the best only)
    names = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert names == ["epoch=2-step=9.ckpt", "last.ckpt"]  # no checkpoint of an epoch that was not audited


def test_last_checkpoint_follows_the_audits_with_save_top_k_0(tmp_path):
    """``save_top_k=0``: only ``last.ckpt``, at each audit (Lightning 2.6 saved none)."""
    ckpt = AuditModelCheckpoint(TAG, tmp_path / "ck", mode="min", save_last=True, save_top_k=0)
    _fit(tmp_path, ckpt, script=WORSE, max_epochs=7)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["last.ckpt"]
    assert _epoch(tmp_path / "ck" / "last.ckpt") == 5


def test_save_last_link_holds_the_last_audited_epoch_too(tmp_path):
    """``save_last="link"``: a link to the audit's top-k checkpoint where it saved one, else a file of the audited epoch.

    Review of da7c5f7 (review_s26c): with "link", Lightning links ``last.ckpt`` to the latest checkpoint saved, so after
    non-improving audits it linked to the best epoch's (2, not 11): the fault da7c5f7 mended for ``save_last=True``."""
    ckpt = AuditModelCheckpoint(TAG, tmp_path / "ck", mode="min", save_last="link")
    _fit(tmp_path, ckpt, script=WORSE, max_epochs=12)
    last = tmp_path / "ck" / "last.ckpt"
    assert not last.is_symlink() and _epoch(last) == 11  # no checkpoint of epoch 11 to link to: a file
    assert _epoch(tmp_path / "ck" / "epoch=2-step=9.ckpt") == 2  # the best kept, not written through a link


def test_save_last_link_links_to_an_improving_audits_checkpoint(tmp_path):
    ckpt = AuditModelCheckpoint(TAG, tmp_path / "ck", mode="min", save_last="link")
    _fit(tmp_path, ckpt, script=[0.5, 0.6, 0.4], max_epochs=9)  # audits of epochs 2, 5, 8: 8 the best
    last = tmp_path / "ck" / "last.ckpt"
    assert last.is_symlink() and last.resolve().name == "epoch=8-step=27.ckpt"
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["epoch=8-step=27.ckpt", "last.ckpt"]
