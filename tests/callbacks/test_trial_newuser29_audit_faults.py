"""Faults in the middle of audits (newuser29 trial: a user whose fits fail inside their audits).

- Out of memory: a forward pass of an audit that ran a device out of memory failed with torch's message alone
  (``Causal audit 'input_effect' failed at epoch 0: CUDA out of memory...``; ``audit_model`` did not even name the
  audit), nothing on what to lower; at set-up, the probe's own pass out of memory was "rejected by the model" with
  advice on ``forward``'s parameters. The error now names ``max_batch_size=`` with a value below the failing pass's
  rows (which then runs), or ``probe_size=`` where the pass held the probe's samples themselves.
- ``audit_model`` raised an audit's error as it was, naming no audit: the error (its type and traceback kept)
  now carries a note naming the audit.
- Weights that diverged mid-fit (NaN): the audits' warning listed non-finite values only, as if the audit had made
  them; it now names the parameters that hold NaN (in the warning and the report's notes).
- A fit resumed from the checkpoint an interrupted audit epoch left (``OnExceptionCheckpoint``) audits that epoch
  first: its console cost line set the audit against the milliseconds since the resumed fit began
  (``5902.2x the 0.0006 s the fit spent since the last audit``); that epoch's training was the earlier run's, so the
  line gives no ratio.
- The same fit, when the audit that raised was its last epoch's: the checkpoint is of a finished training, so the
  resumed fit ran no training and no hook that audits, and that epoch stayed unaudited in silence (the docs said the
  resumed fit audits it). A warning now names the epoch and what audits it.
- The same weights, where an audit refuses the non-finite outputs (``SobolAudit``, ``CaptumBaseline``, an audit of
  your own) stopped the fit naming the outputs, not the weights; and ``CounterfactualAudit`` reported finite numbers
  (a success rate of 0) of the broken model without a word. Both now name the weights.
- A validation dataset that raises on a sample: the callback reads its probe from it at ``on_train_start``, before
  Lightning's first batch, and the dataset's error came out of the callback's hook naming nothing of the probe; it now
  carries a note saying that the audits' probe was being read.
"""

from __future__ import annotations

import gc
import logging
import signal
import warnings
import weakref

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import OnExceptionCheckpoint
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, audit_model
from lightning_causal._compat import OutOfMemoryError
from lightning_causal.audits import Audit, AuditResult, CaptumBaseline
from lightning_causal.callbacks import _audit_run
from lightning_causal.reporting.json_report import load_report
from tests.helpers.lightning import SgdMlp
from tests.helpers.models import all_hook_counts


class _Limited(nn.Module):
    """``SgdMlp``'s network on a device that holds at most ``limit`` rows a forward pass (more: out of memory)."""

    def __init__(self, limit: int, error: type[Exception] = OutOfMemoryError) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = SgdMlp().net
        self.limit, self.error = limit, error

    def forward(self, x):
        if x.shape[0] > self.limit:
            raise self.error(f"CUDA out of memory. Tried to allocate 20.00 GiB ({x.shape[0]} rows)")
        return self.net(x)


_X = torch.randn(16, 5, generator=torch.Generator().manual_seed(0))


def test_audit_model_out_of_memory_names_the_audit_and_a_max_batch_size_that_then_runs():
    # Captum's own batches (its internal_batch_size), which the engine does not run again in halves
    with pytest.raises(OutOfMemoryError) as caught:  # the error as raised: its type and traceback
        audit_model(_Limited(40), _captum(), _X)
    notes = " ".join(getattr(caught.value, "__notes__", []))
    assert "Raised by audit 'captum_baseline' of audit_model" in notes  # before: no note, no audit named
    # IntegratedGradients' pass: 16 integration steps x 16 samples = 256 rows (the memory budget's choice on the CPU)
    assert "the pass that failed held 256 rows, so try `max_batch_size=128`" in notes
    ran = audit_model(_Limited(40), _captum(), _X, max_batch_size=40)[0]
    whole = audit_model(_Limited(10**6), _captum(), _X)[0]
    assert torch.allclose(ran.maps["IntegratedGradients"], whole.maps["IntegratedGradients"], atol=1e-6)


def test_an_intervention_pass_out_of_memory_runs_again_in_halves_with_the_same_numbers():
    # InputEffectAudit's intervention pass: 5 features x 16 samples = 80 rows (the memory budget's choice on the CPU)
    with pytest.warns(UserWarning, match=r"pass of 80 rows ran the device out of memory; it ran again in passes of 40 rows"):
        ran = audit_model(_Limited(40), InputEffectAudit(ace_values=None), _X)[0]
    whole = audit_model(_Limited(10**6), InputEffectAudit(ace_values=None), _X)[0]
    assert torch.allclose(ran.vectors["mean_abs_effect"], whole.vectors["mean_abs_effect"], atol=1e-6)


def _captum():
    return CaptumBaseline(methods=["IntegratedGradients"], method_options={"IntegratedGradients": {"n_steps": 16}})


def test_an_audit_error_of_audit_model_is_named_also_when_it_is_no_memory_error():
    with pytest.raises(RuntimeError, match="mat1 and mat2") as caught:
        audit_model(_Shapes(), InputEffectAudit(ace_values=None), _X)
    assert caught.value.__notes__ == ["Raised by audit 'input_effect' of audit_model"]  # no memory advice


class _Shapes(nn.Module):
    """A shape bug for passes of more than 16 rows (the interventions'), none for the probe's own pass."""

    def forward(self, x):
        return x @ torch.ones(5 if x.shape[0] <= 16 else 4, 2)


def _fit(root, module, audits, *, max_epochs=1, callbacks=(), ckpt_path=None, **options):
    pl.seed_everything(0, verbose=False)
    x, y = _X.repeat(2, 1), (_X[:, 0] > 0).long().repeat(2)
    callback = CausalAuditCallback(audits, probe_size=16, report_dir=root / "reports", **options)
    trainer = pl.Trainer(max_epochs=max_epochs, callbacks=[*callbacks, callback], accelerator="cpu", devices=1,
                         default_root_dir=root, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=bool(callbacks), num_sanity_val_steps=0)
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=16), DataLoader(TensorDataset(x[:16], y[:16]), batch_size=16),
                ckpt_path=ckpt_path)
    return callback, trainer


class _LimitedModule(SgdMlp):
    def __init__(self, limit, error=OutOfMemoryError):
        super().__init__()
        self.net = _Limited(limit, error)


@pytest.mark.parametrize("error", [OutOfMemoryError, RuntimeError])  # RuntimeError: older builds, MPS
def test_an_audit_out_of_memory_in_a_fit_says_which_max_batch_size_to_pass(tmp_path, error):
    module = _LimitedModule(40, error)
    with pytest.raises(RuntimeError, match=r"Causal audit 'captum_baseline' failed at epoch 0: CUDA out of memory.*") as caught:
        _fit(tmp_path, module, [_captum()])
    assert type(caught.value.__cause__) is error  # the original error chained
    assert "`max_batch_size=` (now None: chosen from the memory budget" in str(caught.value)  # before: torch's message only
    assert "so try `max_batch_size=128`" in str(caught.value)
    assert all_hook_counts(module) == 0 and module.training


def test_an_audit_out_of_memory_under_on_error_warn_keeps_the_advice_in_the_report(tmp_path):
    # the dry run's 2 samples x 16 steps (32 rows) fit, the audit's 256 rows do not
    with pytest.warns(UserWarning, match="failed at epoch 0.*so try `max_batch_size=128`"):
        callback, trainer = _fit(tmp_path, _LimitedModule(100), [_captum()], on_error="warn")
    assert trainer.current_epoch == 1 and callback.audited_epochs == [0]  # training went on
    meta = load_report(tmp_path / "reports" / "epoch_0000.json")["audits"]["captum_baseline"]["meta"]
    assert "`max_batch_size=` (now None: chosen from the memory budget" in meta["error"]
    assert "the pass that failed held 256 rows, so try `max_batch_size=128`" in meta["error"]


class _HoldsActivations(_Limited):
    """``_Limited`` whose failing passes first take a tensor, as a device's activations (a weak reference kept)."""

    def __init__(self, limit: int, taken: list[weakref.ref]) -> None:
        super().__init__(limit)
        self.take = taken.append  # not a list of the model's: the audit puts back the lists a model holds

    def forward(self, x):
        if x.shape[0] > self.limit:
            activations = torch.empty(x.shape[0], 1000)
            self.take(weakref.ref(activations))
        return super().forward(x)


class _FreedAtEpochStart(pl.Callback):
    def __init__(self, taken: list[weakref.ref]) -> None:
        self.taken, self.freed = taken, []

    def on_train_epoch_start(self, trainer, pl_module):
        self.freed.append([ref() is None for ref in self.taken])


def test_a_failed_pass_under_on_error_warn_leaves_its_memory_to_the_training_that_goes_on(tmp_path):
    # before: the error held the failed pass's tensors in reference cycles (the snapshot of the audit's frame that the
    # memory advice read, the frame's own variable), freed by the cyclic collector only, whenever it ran
    module = _LimitedModule(100)
    taken: list[weakref.ref] = []
    module.net = _HoldsActivations(100, taken)
    check = _FreedAtEpochStart(taken)
    gc.collect()
    gc.disable()  # reference counting alone: what a cycle holds stays
    try:
        with pytest.warns(UserWarning, match="failed at epoch 0.*so try `max_batch_size=128`"):
            _fit(tmp_path, module, [_captum()], on_error="warn", max_epochs=2, callbacks=[check])
    finally:
        gc.enable()
    assert check.freed == [[], [True]]  # epoch 0's audit failed once; its pass's tensor is gone when epoch 1 trains


def test_the_probe_pass_out_of_memory_at_set_up_asks_for_fewer_probe_samples_not_other_forward_parameters(tmp_path):
    with pytest.raises(MisconfigurationException, match=r"ran the model out of memory.*`probe_size=`") as caught:
        _fit(tmp_path, _LimitedModule(8), [InputEffectAudit(ace_values=None)])
    assert "give `forward` these parameters" not in str(caught.value)  # before: advice on forward's signature


class _DivergeAt(pl.Callback):
    """Training diverges before epoch ``epoch``: a NaN in the first layer's weights."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            with torch.no_grad():
                pl_module.net[0].weight[0, 0] = float("nan")


def test_weights_that_diverged_mid_fit_are_named_in_the_warning_and_the_report(tmp_path):
    with pytest.warns(UserWarning) as seen:
        _fit(tmp_path, SgdMlp(), [InputEffectAudit(ace_values=None)], max_epochs=2, callbacks=[_DivergeAt(1)])
    said = [str(w.message) for w in seen if "NaN or infinite" in str(w.message)]
    assert len(said) == 1 and "at epoch 1" in said[0]
    # SGD spread the NaN through the first layer and into the second (both layers' weights and biases)
    assert "the model's weights hold NaN or infinite values (net.0.weight, net.0.bias, net.2.weight and 1 more)" in said[0]
    notes = load_report(tmp_path / "reports" / "epoch_0001.json")["audits"]["input_effect"]["meta"]["notes"]
    assert any("net.0.weight" in note for note in notes)
    clean = load_report(tmp_path / "reports" / "epoch_0000.json")["audits"]["input_effect"]["meta"]
    assert "notes" not in clean  # the epoch before: nothing to say


class _StopsAt(Audit):
    """Raises ``error`` in its ``at``-th run (the dry run at set-up is the 0th; ``None``: never): Ctrl+C
    (``KeyboardInterrupt``) or an error of its own."""

    def __init__(self, name: str, at: int | None, error: BaseException | type[BaseException]) -> None:
        super().__init__(name)
        self.at, self.runs, self.error = at, 0, error

    def run(self, model, probe, *, max_batch_size=None) -> AuditResult:
        self.runs += 1
        if self.runs - 1 == self.at:
            raise self.error
        return AuditResult(self.name, scalars={"ok": 1.0})


class _RngBeforeAudits(pl.Callback):
    """The global RNG state at an epoch's end, before the audit callback (listed after this one) runs."""

    def on_train_epoch_end(self, trainer, pl_module):
        self.state = torch.get_rng_state()


def test_the_epoch_audited_when_an_interrupted_fit_resumes_sets_no_ratio_against_the_resumed_fits_first_ms(
        tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(_audit_run, "SLOW_AUDIT_SECONDS", -1.0)  # every audit epoch has its line
    handler, module, rng = signal.getsignal(signal.SIGINT), SgdMlp(), _RngBeforeAudits()
    try:  # Lightning's graceful shutdown: on_exception (the checkpoint written), then SystemExit(1)
        with pytest.raises(SystemExit):
            _fit(tmp_path / "a", module, [InputEffectAudit(ace_values=None), _StopsAt("interrupt", 2, KeyboardInterrupt)], max_epochs=3,
                 callbacks=[OnExceptionCheckpoint(tmp_path / "exc", filename="exc"), rng])
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores SIGINT after a KeyboardInterrupt
    # the audit interrupted left no trace: no hook, the training mode, the global RNG as the epoch's end left it
    assert all_hook_counts(module) == 0 and all(m.training for m in module.modules())
    assert torch.equal(rng.state, torch.get_rng_state())
    caplog.clear()
    with caplog.at_level(logging.INFO):
        callback, _ = _fit(tmp_path / "b", SgdMlp(), [InputEffectAudit(ace_values=None), _StopsAt("interrupt", None, KeyboardInterrupt)], max_epochs=3,
                           callbacks=[OnExceptionCheckpoint(tmp_path / "exc2", filename="exc")],
                           ckpt_path=tmp_path / "exc" / "exc.ckpt")
    assert callback.audited_epochs == [0, 1, 2]
    lines = {int(m.split()[4]): m for r in caplog.records if (m := r.getMessage()).startswith("Causal audit at epoch")}
    assert sorted(lines) == [1, 2]
    assert "the fit spent since the last audit" not in lines[1]  # before: "...x the 0.0006 s the fit spent since..."


def test_a_fit_resumed_after_its_last_epochs_audit_raised_says_that_epoch_is_not_audited(tmp_path):
    with pytest.raises(RuntimeError, match="'fails' failed at epoch 1"):  # runs: 0 the dry run, 1 epoch 0, 2 epoch 1
        _fit(tmp_path / "a", SgdMlp(), [_StopsAt("fails", 2, RuntimeError("transient"))], max_epochs=2, callbacks=[OnExceptionCheckpoint(tmp_path, filename="exc")])
    with pytest.warns(UserWarning, match=r"did not audit epoch 1: this fit resumed from a checkpoint of a finished training.*"
                                         r"audit_model\(model, audits, data, epoch=1\)"):  # before: silence
        callback, _ = _fit(tmp_path / "b", SgdMlp(), [_StopsAt("fails", None, RuntimeError)], max_epochs=2, callbacks=[OnExceptionCheckpoint(tmp_path / "b")],
                           ckpt_path=tmp_path / "exc.ckpt")
    assert callback.audited_epochs == [0]
    # resumed with room to train, the callback audits epoch 1 first, as the warning says
    callback, _ = _fit(tmp_path / "c", SgdMlp(), [_StopsAt("fails", None, RuntimeError)], max_epochs=3, callbacks=[OnExceptionCheckpoint(tmp_path / "c")],
                       ckpt_path=tmp_path / "exc.ckpt")
    assert callback.audited_epochs == [0, 1, 2]


def test_a_fit_resumed_from_the_last_checkpoint_of_a_finished_fit_whose_audits_all_ran_warns_nothing(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    _fit(tmp_path / "a", SgdMlp(), [_StopsAt("fails", None, RuntimeError)], max_epochs=2, callbacks=[ModelCheckpoint(tmp_path / "ck", save_last=True)])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*did not audit")
        callback, _ = _fit(tmp_path / "b", SgdMlp(), [_StopsAt("fails", None, RuntimeError)], max_epochs=2,
                           callbacks=[ModelCheckpoint(tmp_path / "ck2", save_last=True)], ckpt_path=tmp_path / "ck" / "last.ckpt")
    assert callback.audited_epochs == [0, 1]  # both restored from the checkpoint, none run again


class _Corrupt(torch.utils.data.Dataset):
    """Samples of ``_X``; sample 5 cannot be read (a corrupt file)."""

    def __len__(self):
        return 16

    def __getitem__(self, i):
        if i == 5:
            raise OSError("image file is truncated (sample 5)")
        return _X[i], torch.tensor(int(_X[i, 0] > 0))


def test_a_dataset_error_while_reading_the_probe_says_it_was_the_audits_probe(tmp_path):
    callback = CausalAuditCallback(InputEffectAudit(ace_values=None), probe_size=8, report_dir=tmp_path)
    trainer = pl.Trainer(max_epochs=1, callbacks=[callback], accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0)
    with pytest.raises(OSError, match="truncated") as caught:  # the dataset's error, its type kept
        trainer.fit(SgdMlp(), DataLoader(TensorDataset(_X, (_X[:, 0] > 0).long()), batch_size=8), DataLoader(_Corrupt(), batch_size=8))
    assert caught.value.__notes__ == ["Raised while reading the audits' probe: the first 8 samples of the DataLoader the audits read "
                                      "(`probe=`, audit_model's `data`, or else the validation or training data)"]  # before: no note


def _diverged() -> nn.Module:
    net = SgdMlp().net
    with torch.no_grad():
        net[2].weight[0, 0] = float("nan")
    return net


class _RefusesNaN(Audit):
    """An audit of your own that refuses non-finite outputs (as ``SobolAudit`` and ``CaptumBaseline`` do)."""

    def __init__(self) -> None:
        super().__init__("refuses_nan")

    def run(self, model, probe, *, max_batch_size=None) -> AuditResult:
        if not bool(torch.isfinite(model(probe.first)).all()):
            raise ValueError("expected finite outputs")
        return AuditResult(self.name, scalars={"ok": 1.0})


def test_an_audit_that_refuses_the_outputs_of_diverged_weights_names_the_weights(tmp_path):
    with pytest.raises(RuntimeError, match=r"'refuses_nan' failed at epoch 1: expected finite outputs; the model's weights "
                                           r"hold NaN or infinite values \(net.0.weight, net.0.bias, net.2.weight and 1 more\)"):
        _fit(tmp_path, SgdMlp(), [_RefusesNaN()], max_epochs=2, callbacks=[_DivergeAt(1)])  # before: the outputs only
    with pytest.raises(ValueError, match="expected finite outputs") as caught:
        audit_model(_diverged(), _RefusesNaN(), _X)
    assert caught.value.__notes__ == ["Raised by audit 'refuses_nan' of audit_model (its dry run on 2 probe samples, before any "
                                      "audit ran in full); the model's weights hold NaN or infinite "
                                      "values (2.weight): training diverged before this audit (a learning rate too high, a "
                                      "loss of log(0))"]


def test_finite_numbers_of_a_model_of_diverged_weights_are_warned_about():
    from lightning_causal.audits import CounterfactualAudit

    y = (_X[:, 0] > 0).long()
    with pytest.warns(UserWarning, match=r"'counterfactual' ran on a model it cannot explain: the model's weights hold NaN "
                                         r"or infinite values \(2.weight\)"):  # before: no warning
        result = audit_model(_diverged(), CounterfactualAudit(), (_X, y))[0]
    assert result.non_finite() == [] and result.scalars["success_rate"] == 0.0  # finite numbers, of a broken model
    assert any("2.weight" in note for note in result.meta["notes"])


class _TrainsThenStops(Audit):
    """Everything an audit should not do, then a stop: train mode, a BatchNorm forward with autograd (its running
    statistics move), a hook left on, then ``error`` (Ctrl+C, or an error of its own)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__("trains_then_stops")
        self.error = error

    def run(self, model, probe, *, max_batch_size=None) -> AuditResult:
        model.train()
        model[1].register_forward_hook(lambda m, i, o: o * 0)
        model(probe.first).sum().backward()
        raise self.error


@pytest.mark.parametrize("error", [KeyboardInterrupt(), ValueError("its own")])
def test_audit_model_stopped_midway_leaves_the_model_as_it_found_it(error):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(type(error)), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the hook left is removed with a warning
        audit_model(net, _TrainsThenStops(error), _X)
    assert not any(m.training for m in net.modules()) and all_hook_counts(net) == 0
    assert all(p.grad is None for p in net.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # running statistics included
