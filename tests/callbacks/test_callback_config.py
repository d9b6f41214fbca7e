"""Configuration checks, the schedule, checkpoints and monitoring of causal metrics."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal import (
    CausalAuditCallback,
    CausalGraphAudit,
    InputEffectAudit,
    UnitImportanceAudit,
)
from tests.helpers.lightning import digits_like, quick_trainer, small_module, synthetic_loaders


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"audits": []}, "`audits`"),
        ({"audits": [object()]}, "Audit objects but got \\['object'\\]"),
        ({"audits": [InputEffectAudit(), InputEffectAudit()]}, "distinct names"),
        ({"every_n_epochs": 0}, "`every_n_epochs`.*int >= 1"),
        ({"every_n_epochs": 1.5}, "`every_n_epochs`"),
        ({"probe_size": 0}, "`probe_size`"),
        ({"epochs": [-1]}, "`epochs`"),
        ({"max_batch_size": 0}, "`max_batch_size`"),
        ({"on_error": "ignore"}, "`on_error`.*\\('raise', 'warn'\\).*'ignore'"),
    ],
)
def test_constructor_checks(kwargs, match):
    args = {"audits": [InputEffectAudit()], **kwargs}
    with pytest.raises(MisconfigurationException, match=match):
        CausalAuditCallback(**args)


def test_unknown_layer_fails_at_setup_with_close_names(tmp_path):
    cb = CausalAuditCallback([UnitImportanceAudit(["model.conv_2"])], report_dir=tmp_path)
    with pytest.raises(MisconfigurationException, match=r"unit_importance.*close matches: \['model.conv2'"):
        quick_trainer(callbacks=[cb]).fit(small_module(), *synthetic_loaders())


def test_empty_probe_fails(tmp_path):
    cb = CausalAuditCallback([InputEffectAudit()], probe=torch.zeros(0, 1, 8, 8), report_dir=tmp_path)
    with pytest.raises(MisconfigurationException, match="non-empty `probe`"):
        quick_trainer(callbacks=[cb]).fit(small_module(), *synthetic_loaders())


def test_probe_shape_rejected_by_model_fails(tmp_path):
    cb = CausalAuditCallback([InputEffectAudit()], probe=torch.zeros(4, 3, 5, 5), report_dir=tmp_path)
    with pytest.raises(MisconfigurationException, match=r"probe of shape \[4, 3, 5, 5\] is rejected"):
        quick_trainer(callbacks=[cb]).fit(small_module(), *synthetic_loaders())


def test_bad_probe_type_fails():
    cb = CausalAuditCallback([InputEffectAudit()], probe="digits")
    with pytest.raises(MisconfigurationException, match="`probe`.*str"):
        quick_trainer(callbacks=[cb]).fit(small_module(), *synthetic_loaders())


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ({"every_n_epochs": 2}, [1, 3]),
        ({"every_n_epochs": lambda e: e in (0, 2)}, [0, 2, 3]),  # 3: on_fit_end
        ({"epochs": [1]}, [1, 3]),
        ({"epochs": [1], "on_fit_end": False}, [1]),
    ],
)
def test_schedule(tmp_path, schedule, expected):
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], report_dir=tmp_path, **schedule)
    quick_trainer(callbacks=[cb], max_epochs=4).fit(small_module(), *synthetic_loaders())
    assert cb.audited_epochs == expected


def test_resume_continues_schedule_without_auditing_twice(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_epochs=1)
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], every_n_epochs=1, report_dir=tmp_path / "r")
    quick_trainer(callbacks=[cb, ckpt], max_epochs=2, enable_checkpointing=True).fit(small_module(), *synthetic_loaders())
    assert cb.audited_epochs == [0, 1]
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)  # plain values and tensors only
    assert state["callbacks"][cb.state_key]["audited_epochs"] == [0, 1]
    cb2 = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], every_n_epochs=1, report_dir=tmp_path / "r")
    runs = []
    original = cb2._run
    cb2._run = lambda *a: (runs.append(a[2]), original(*a))
    quick_trainer(callbacks=[cb2], max_epochs=3).fit(small_module(), *synthetic_loaders(), ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    assert runs == [2] and cb2.audited_epochs == [0, 1, 2]
    # drift continues across the resume: the previous vectors came back from the checkpoint
    assert "drift/mean_abs_effect/spearman" in cb2.last_results["input_effect"].scalars


def test_resume_keeps_the_graph_audits_previous_graph(tmp_path):
    """The edges gained/lost since the previous audit continue across a resume: the causal graph
    audit's previous graph travels in the checkpoint as plain values (weights_only load)."""
    def audit():
        return CausalGraphAudit(["model.conv1", "model.conv2"], top_k=2, stability_resamples=0)

    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_epochs=1)
    cb = CausalAuditCallback([audit()], every_n_epochs=1, on_fit_end=False, report_dir=tmp_path / "r")
    quick_trainer(callbacks=[cb, ckpt], max_epochs=1, enable_checkpointing=True).fit(small_module(), *synthetic_loaders())
    assert "edges_gained" not in cb.last_results["causal_graph"].scalars  # nothing to compare with yet
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)["callbacks"][cb.state_key]
    saved = state["audit_states"]["causal_graph"]["previous"]
    assert saved == cb.last_results["causal_graph"].graphs["causal_graph"]
    cb2 = CausalAuditCallback([audit()], every_n_epochs=1, on_fit_end=False, report_dir=tmp_path / "r")
    quick_trainer(callbacks=[cb2], max_epochs=2).fit(small_module(), *synthetic_loaders(), ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    result = cb2.last_results["causal_graph"]
    assert cb2.audited_epochs == [0, 1] and "edge_jaccard_previous" in result.scalars
    now = {(e["source"], e["target"]) for e in result.graphs["causal_graph"]["edges"]}
    before = {(e["source"], e["target"]) for e in saved["edges"]}
    assert result.scalars["edges_gained"] == len(now - before) and result.scalars["edges_lost"] == len(before - now)


def test_two_instances_live_in_one_checkpoint(tmp_path):
    a = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], epochs=[0], on_fit_end=False,
                            report_dir=tmp_path / "a")
    b = CausalAuditCallback([UnitImportanceAudit(["model.conv1"])], epochs=[1], report_dir=tmp_path / "b")
    assert a.state_key != b.state_key
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    quick_trainer(callbacks=[a, b, ckpt], max_epochs=2, enable_checkpointing=True).fit(small_module(), *synthetic_loaders())
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)["callbacks"]
    assert state[a.state_key]["audited_epochs"] == [0] and state[b.state_key]["audited_epochs"] == [1]


def test_early_stopping_monitors_a_causal_metric(tmp_path):
    stop = EarlyStopping(monitor="causal/unit_importance/model.conv1/top1_importance", mode="max", patience=0,
                         check_on_train_epoch_end=True, min_delta=1e9)
    cb = CausalAuditCallback([UnitImportanceAudit(["model.conv1"])], report_dir=tmp_path)
    t = quick_trainer(callbacks=[cb, stop], max_epochs=5)
    t.fit(small_module(), *synthetic_loaders())
    assert "causal/unit_importance/model.conv1/top1_importance" in t.callback_metrics
    assert t.current_epoch < 5  # stopped on the causal metric (no improvement by 1e9)


def test_explicit_probe_and_labels_are_used(tmp_path):
    x, y = digits_like(12, seed=5)
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4)], probe=(x, y), probe_size=10, report_dir=tmp_path)
    quick_trainer(callbacks=[cb], max_epochs=1).fit(small_module(), *synthetic_loaders())
    assert torch.equal(cb.probe.first, x[:10]) and torch.equal(cb.probe.labels, y[:10])


def test_a_probe_is_read_from_a_batch_nested_like_the_training_batches():
    from lightning_causal.callbacks._probe import probe_from

    x1, x2, y = torch.randn(12, 3), torch.randn(12, 2), torch.arange(12)
    p = probe_from(((x1, x2), y), 10)  # ((x1, x2), y): a model of two inputs (it was refused)
    assert torch.equal(p.inputs[0], x1[:10]) and torch.equal(p.inputs[1], x2[:10]) and torch.equal(p.labels, y[:10])
    p = probe_from({"x": x1, "y": y}, 10)  # a mapping batch
    assert torch.equal(p.inputs, x1[:10]) and torch.equal(p.labels, y[:10])
    with pytest.raises(MisconfigurationException, match=r"`probe`.*nested.*a tuple of \[Tensor, str\]"):
        probe_from((x1, "labels"), 10)


def test_a_probe_object_is_used_as_it_is(tmp_path):
    from lightning_causal.audits import Probe

    x, y = digits_like(12, seed=5)
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4)], probe=Probe(x, y), probe_size=10, report_dir=tmp_path)
    quick_trainer(callbacks=[cb], max_epochs=1).fit(small_module(), *synthetic_loaders())
    assert torch.equal(cb.probe.first, x[:10]) and torch.equal(cb.probe.labels, y[:10])


def test_default_probe_is_validation_data_then_training_data(tmp_path):
    train, val = synthetic_loaders()
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4)], probe_size=5, report_dir=tmp_path)
    quick_trainer(callbacks=[cb], max_epochs=1).fit(small_module(), train, val)
    assert torch.equal(cb.probe.first, val.dataset.tensors[0][:5])
    cb2 = CausalAuditCallback([InputEffectAudit(patch_size=4)], probe_size=5, report_dir=tmp_path)
    quick_trainer(callbacks=[cb2], max_epochs=1).fit(small_module(), train)
    assert torch.equal(cb2.probe.first, train.dataset.tensors[0][:5])


def test_nan_in_an_audit_is_reported(tmp_path):
    module = small_module()
    with torch.no_grad():
        module.model.fc2.bias[0] = float("nan")
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, target=0)], report_dir=tmp_path)
    with pytest.warns(UserWarning, match="NaN or infinite"):
        quick_trainer(callbacks=[cb], max_epochs=1, limit_train_batches=1).fit(module, *synthetic_loaders())
    assert "non-finite" in " ".join(cb.last_results["input_effect"].meta["notes"])
    pl.seed_everything(0, verbose=False)


def test_sync_dist_advice_is_silenced_for_the_callbacks_scalars_only():
    import warnings

    from lightning.pytorch.utilities.warnings import PossibleUserWarning

    from lightning_causal.callbacks.audit import quiet_sync_dist_advice

    advice = "It is recommended to use `self.log({!r}, ..., sync_dist=True)` when logging on epoch level in distributed setting"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_sync_dist_advice()
        for tag in ("causal/input_effect/mean_abs_effect", "compare/IG/spearman", "compare/IG/sensitivity_max", "val_loss"):
            warnings.warn(advice.format(tag), PossibleUserWarning, stacklevel=1)
    assert [str(w.message).split("'")[1] for w in seen] == ["val_loss"]  # the user's own metrics keep the advice


@pytest.mark.parametrize("stage", ["validate", "test"])
def test_validate_or_test_without_fit_says_that_no_audit_runs(tmp_path, stage):
    train, val = synthetic_loaders()
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4)], report_dir=tmp_path)
    with pytest.warns(UserWarning, match=rf"during `trainer.fit` only.*this `trainer\.{stage}` run audits nothing"):
        module = small_module()  # with a test_step of its own (fcaf118b)
        getattr(quick_trainer(callbacks=[cb]), stage)(module, val)
    assert cb.audited_epochs == [] and cb.probe is None


def test_fast_dev_run_audits_but_writes_no_report_unless_report_dir_is_given(tmp_path):
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4)])
    quick_trainer(callbacks=[cb], fast_dev_run=True, default_root_dir=tmp_path / "run").fit(small_module(), *synthetic_loaders())
    assert cb.audited_epochs == [0] and cb.report_dir is None
    assert not (tmp_path / "run").exists()  # before the fix: run/causal_audit/epoch_0000.json, where Lightning wrote nothing
    given = CausalAuditCallback([InputEffectAudit(patch_size=4)], report_dir=tmp_path / "reports")
    quick_trainer(callbacks=[given], fast_dev_run=True).fit(small_module(), *synthetic_loaders())
    assert [p.name for p in (tmp_path / "reports").iterdir()] == ["epoch_0000.json"]
