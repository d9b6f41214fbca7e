"""Checkpoint trial: a fit resumed with a changed set of audits (one kept, one removed, one added)."""

from __future__ import annotations

import warnings

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_causal import CausalAuditCallback
from lightning_causal.audits.base import Audit, AuditResult
from tests.helpers.lightning import classifier, loaders, reports, trainer


class CountingAudit(Audit):
    """A vector that moves by one rank per run; its run count is its state."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.calls = 0

    def run(self, model, probe, *, max_batch_size=None) -> AuditResult:  # noqa: ANN001
        self.calls += 1
        return AuditResult(self.name, vectors={"imp": torch.tensor([3.0, 2.0, 1.0, 0.0]).roll(self.calls)})

    def state_dict(self) -> dict:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict) -> None:
        self.calls = int(state.get("calls", 0))


def _fit(tmp_path, names, max_epochs, ckpt_path=None, probe_size=8):  # noqa: ANN001, ANN202
    train, val = loaders(shuffle=False)
    cb = CausalAuditCallback([CountingAudit(n) for n in names], probe_size=probe_size, report_dir=tmp_path / "reports")
    mc = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{epoch}", save_top_k=-1)
    trainer(tmp_path, max_epochs=max_epochs, callbacks=[cb, mc], enable_checkpointing=True).fit(
        classifier(), train, val, ckpt_path=ckpt_path)
    return cb


def test_resume_with_changed_audits_restores_the_kept_audits_state(tmp_path):
    _fit(tmp_path, ["keep", "gone"], max_epochs=2)
    with pytest.warns(UserWarning, match=r"restored for the audits \['keep'\].*start fresh: \['new'\]; dropped: \['gone'\]"):
        cb = _fit(tmp_path, ["keep", "new"], max_epochs=3, ckpt_path=tmp_path / "ckpt" / "epoch=1.ckpt")
    assert cb.audited_epochs == [0, 1, 2]  # the schedule goes on
    assert cb.audits[0].calls == 3 and cb.audits[1].calls == 1  # the kept audit's state, the new one's fresh
    scalars = reports(tmp_path / "reports")["epoch_0002.json"]["audits"]
    assert "drift/imp/spearman" in scalars["keep"]["scalars"]  # compared with its audit at epoch 1
    assert "drift/imp/spearman" not in scalars["new"]["scalars"]
    assert set(cb.state_dict()["previous_vectors"]) == {"keep", "new"}  # the removed audit's base is not carried on


def test_resume_with_another_probe_size_warns_that_drift_compares_different_samples(tmp_path):
    _fit(tmp_path, ["keep"], max_epochs=2)
    ckpt = tmp_path / "ckpt" / "epoch=1.ckpt"
    assert torch.load(ckpt, weights_only=True)["callbacks"]["CausalAuditCallback{'audits': ['keep']}"]["probe"] == {
        "samples": 8, "shape": [1, 8, 8], "source": "val_dataloaders"}
    with pytest.warns(UserWarning, match=r"resumes with another probe \(\{'samples': 4.*\{'samples': 8"):
        _fit(tmp_path, ["keep"], max_epochs=3, ckpt_path=ckpt, probe_size=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(tmp_path, ["keep"], max_epochs=3, ckpt_path=ckpt)  # the same probe: no warning
    assert not [w for w in caught if "another probe" in str(w.message)]


def test_a_fit_into_a_report_dir_holding_an_earlier_runs_later_epochs_warns(tmp_path):
    _fit(tmp_path, ["keep"], max_epochs=3)  # reports of epochs 0, 1, 2
    with pytest.warns(UserWarning, match=r"already holds reports of epochs \[2\] \(of an earlier run\), at or after the epoch "
                                         r"this fit starts at \(2\)"):
        _fit(tmp_path, ["keep"], max_epochs=3, ckpt_path=tmp_path / "ckpt" / "epoch=1.ckpt")
    with warnings.catch_warnings(record=True) as caught:  # resumed after its last report: its own, no warning
        warnings.simplefilter("always")
        _fit(tmp_path, ["keep"], max_epochs=4, ckpt_path=tmp_path / "ckpt" / "epoch=2.ckpt")
    assert not [w for w in caught if "already holds reports" in str(w.message)]
    with pytest.warns(UserWarning, match=r"already holds reports of epochs \[0, 1, 2, 3\]"):  # a new fit into the directory
        _fit(tmp_path, ["keep"], max_epochs=1)


def test_resume_with_entirely_other_audits_restores_nothing(tmp_path):
    _fit(tmp_path, ["gone"], max_epochs=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cb = _fit(tmp_path, ["new"], max_epochs=3, ckpt_path=tmp_path / "ckpt" / "epoch=1.ckpt")
    assert not [w for w in caught if "is restored for the audits" in str(w.message)]
    assert cb.audits[0].calls == 1 and set(cb.state_dict()["previous_vectors"]) == {"new"}
