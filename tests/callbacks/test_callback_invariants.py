"""An audit never changes training: bit-identical weights, no hooks, modes/grads/RNG restored."""

from __future__ import annotations

import pickle

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, UnitImportanceAudit
from lightning_causal.audits import Audit, AuditResult
from lightning_causal.callbacks._probe import probe_from
from tests.helpers.lightning import digits_like, quick_trainer, small_module, synthetic_loaders
from tests.helpers.models import all_hook_counts

LAYERS = ["model.conv1", "model.conv2", "model.fc2:input"]  # a module's input too (a site attached per call)


def _audits():
    return [InputEffectAudit(patch_size=4), UnitImportanceAudit(LAYERS, top_k=3)]


def _fit(with_callback: bool, tmp_path, **trainer_kwargs):
    pl.seed_everything(7, verbose=False)
    module = small_module()
    train, val = synthetic_loaders()
    callbacks = [CausalAuditCallback(_audits(), every_n_epochs=1, probe_size=16, report_dir=tmp_path / "r")] if with_callback else []
    t = quick_trainer(callbacks=callbacks, **trainer_kwargs)
    t.fit(module, train, val)
    return module, t


def test_same_seed_gives_bit_identical_weights_and_buffers(tmp_path):
    a, ta = _fit(False, tmp_path, max_epochs=3)
    b, tb = _fit(True, tmp_path, max_epochs=3)
    assert tb.callbacks[0].audited_epochs == [0, 1, 2]  # the audits did run
    for (na, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), na
    assert all_hook_counts(b) == 0
    assert [n for n, _ in b.named_modules()] == [n for n, _ in a.named_modules()]  # no input site left attached


class _Snapshot(pl.Callback):
    """Snapshots modes, requires_grad, grads, buffers and RNG before the audit callback runs.

    Lightning steps the optimizer on an epoch's last batch, so with ``inject=True`` pending
    accumulated gradients are planted first (the next window's ``zero_grad`` clears them)."""

    def __init__(self, inject: bool = False):
        self.inject = inject

    def on_train_epoch_end(self, trainer, pl_module):
        if self.inject:
            g = torch.Generator().manual_seed(trainer.current_epoch)
            for p in pl_module.parameters():
                if p.requires_grad:
                    p.grad = torch.randn(p.shape, generator=g)
        self.modes = [m.training for m in pl_module.modules()]
        self.requires = [p.requires_grad for p in pl_module.parameters()]
        self.grads = [None if p.grad is None else p.grad.clone() for p in pl_module.parameters()]
        self.buffers = [b.clone() for b in pl_module.buffers()]
        self.rng = torch.get_rng_state()


class _Check(pl.Callback):
    def __init__(self, snap):
        self.snap, self.checked = snap, 0

    def on_train_epoch_end(self, trainer, pl_module):
        s = self.snap
        assert [m.training for m in pl_module.modules()] == s.modes
        assert [p.requires_grad for p in pl_module.parameters()] == s.requires
        now = [None if p.grad is None else p.grad for p in pl_module.parameters()]
        assert any(g is not None for g in s.grads)  # pending accumulated gradients exist
        assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(s.grads, now))
        assert all(torch.equal(a, b) for a, b in zip(s.buffers, pl_module.buffers()))
        assert torch.equal(s.rng, torch.get_rng_state())
        assert all_hook_counts(pl_module) == 0
        self.checked += 1


def test_modes_requires_grad_grads_buffers_rng_unchanged_with_accumulation(tmp_path):
    pl.seed_everything(3, verbose=False)
    module = small_module()
    module.model.fc1.bias.requires_grad_(False)
    module.model.conv1.eval()  # a submodule in a mode of its own
    snap = _Snapshot(inject=True)
    check = _Check(snap)
    audit = CausalAuditCallback(_audits(), probe_size=16, report_dir=tmp_path)
    train, val = synthetic_loaders(n=88, batch_size=16)  # 66 training samples: 5 batches, odd -> grads pending
    quick_trainer(callbacks=[snap, audit, check], accumulate_grad_batches=2).fit(module, train, val)
    assert check.checked == 2 and audit.audited_epochs == [0, 1]


class BoomAudit(Audit):
    """Fails when it runs during training; its dry run before training passes (a failure that only
    the real data of an epoch reveals)."""

    def run(self, model, probe, *, max_batch_size=None):
        model(probe.first[:2] * float("nan"))
        raise RuntimeError("kaboom")

    def dry_run(self, model, probe):
        pass


def test_failing_audit_raises_with_its_name_and_leaves_no_hooks(tmp_path):
    module = small_module()
    cb = CausalAuditCallback([UnitImportanceAudit(LAYERS), BoomAudit()], report_dir=tmp_path)
    with pytest.raises(RuntimeError, match="'boom' failed at epoch 0: kaboom"):
        quick_trainer(callbacks=[cb]).fit(module, *synthetic_loaders())
    assert all_hook_counts(module) == 0
    assert module.training


def test_failing_audit_warns_and_training_continues(tmp_path):
    module = small_module()
    cb = CausalAuditCallback([BoomAudit(), InputEffectAudit(patch_size=4)], on_error="warn", report_dir=tmp_path)
    t = quick_trainer(callbacks=[cb], max_epochs=2)
    with pytest.warns(UserWarning, match="'boom' failed"):
        t.fit(module, *synthetic_loaders())
    assert t.current_epoch == 2 and cb.audited_epochs == [0, 1]
    assert float(t.callback_metrics["causal/boom/failed"]) == 1.0
    assert "causal/input_effect/mean_abs_effect" in t.callback_metrics


def test_callback_pickles_before_and_after_fit(tmp_path):
    cb = CausalAuditCallback(_audits(), probe=digits_like(16)[0], report_dir=tmp_path)
    pickle.loads(pickle.dumps(cb))
    quick_trainer(callbacks=[cb], max_epochs=1).fit(small_module(), *synthetic_loaders())
    clone = pickle.loads(pickle.dumps(cb))
    assert clone.audited_epochs == [0] and torch.equal(clone.probe.first, cb.probe.first)


def test_probe_from_distributed_loader_is_not_padded():
    x, y = digits_like(10)
    ds = TensorDataset(x, y)
    loader = DataLoader(ds, batch_size=4, sampler=DistributedSampler(ds, num_replicas=3, rank=2, shuffle=True))
    probe = probe_from(loader, 8)
    assert torch.equal(probe.first, x[:8]) and torch.equal(probe.labels, y[:8])
    probe = probe_from(loader, 100)  # more than available: every sample once, none repeated
    assert probe.first.shape[0] == 10


@pytest.mark.parametrize(
    "kwargs",
    [
        {"precision": "bf16-mixed"},
        {"fast_dev_run": True},
        {"limit_val_batches": 0},
        {"logger": False},
    ],
)
def test_trainer_settings_behave(tmp_path, kwargs):
    module = small_module()
    cb = CausalAuditCallback(_audits(), probe_size=16, report_dir=tmp_path / "r")
    t = quick_trainer(callbacks=[cb], **kwargs)
    t.fit(module, *synthetic_loaders())
    assert cb.audited_epochs, kwargs
    assert torch.isfinite(torch.tensor(cb.last_results["input_effect"].scalars["mean_abs_effect"]))
    assert all_hook_counts(module) == 0


def test_fit_end_audit_when_schedule_never_fires(tmp_path):
    cb = CausalAuditCallback(_audits(), every_n_epochs=10, report_dir=tmp_path)
    quick_trainer(callbacks=[cb], max_epochs=2).fit(small_module(), *synthetic_loaders())
    assert cb.audited_epochs == [1]
    assert (tmp_path / "epoch_0001_fit_end.json").exists()


def test_no_fit_end_audit_when_disabled(tmp_path):
    cb = CausalAuditCallback(_audits(), every_n_epochs=10, on_fit_end=False, report_dir=tmp_path)
    quick_trainer(callbacks=[cb], max_epochs=2).fit(small_module(), *synthetic_loaders())
    assert cb.audited_epochs == [] and not list(tmp_path.glob("*.json"))


class _Counting(InputEffectAudit):
    calls = 0

    def run(self, model, probe, *, max_batch_size=None):
        type(self).calls += 1
        return super().run(model, probe, max_batch_size=max_batch_size)


def test_audits_skip_sanity_check_and_run_outside_inference_mode(tmp_path):
    seen = []

    class GradAudit(Audit):
        def run(self, model, probe, *, max_batch_size=None):
            seen.append((torch.is_inference_mode_enabled(), model.trainer.sanity_checking))
            x = probe.first.clone().requires_grad_(True)
            with torch.enable_grad():
                model(x).sum().backward()  # gradient baselines need autograd
            return AuditResult(self.name, scalars={"grad_norm": float(x.grad.norm())})

    module = small_module()
    cb = CausalAuditCallback([GradAudit()], report_dir=tmp_path)
    snap, check = _Snapshot(), None
    t = quick_trainer(callbacks=[snap, cb], num_sanity_val_steps=2, max_epochs=1)
    t.fit(module, *synthetic_loaders())
    assert seen == [(False, False), (False, False)]  # the dry run before training, the audit of epoch 0
    assert all((a is None and p.grad is None) or torch.equal(a, p.grad) for a, p in zip(snap.grads, module.parameters()))
    del check
