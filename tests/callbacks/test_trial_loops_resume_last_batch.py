"""A fit resumed from a checkpoint that ``ModelCheckpoint(every_n_train_steps=N)`` wrote at an epoch's last batch
(N the epoch's length: after its last optimizer step, before its validation and ``on_train_epoch_end``), the
loops trial: Lightning resumes at the next epoch and calls no ``on_train_epoch_end`` for that one, so its
scheduled audit was lost in silence (no report, no TensorBoard point, no drift base for the next audit). The
weights restored are that epoch's end weights: the callback now audits it when the resumed fit starts, with
the report and the TensorBoard step of the uninterrupted fit, and training stays bit-identical without it."""

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.reporting.json_report import load_report
from tests.helpers.lightning import SgdMlp

TAG = "causal/input_effect/mean_abs_effect"


_Net = SgdMlp  # Linear(5, 8) -> ReLU -> Linear(8, 3), SGD


def _fit(root, with_callback=True, ckpt_path=None, checkpoints=None):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(48, 5, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    pl.seed_everything(0, verbose=False)
    module = _Net()
    audit = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=16, report_dir=root / "reports")
    callbacks = ([audit] if with_callback else []) + ([checkpoints] if checkpoints is not None else [])
    trainer = pl.Trainer(max_epochs=3, callbacks=callbacks, accelerator="cpu", devices=1, default_root_dir=root,
                         logger=TensorBoardLogger(root, name="", version=""), enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=checkpoints is not None, deterministic=True,
                         log_every_n_steps=1)
    trainer.fit(module, DataLoader(TensorDataset(x[:32], y[:32]), batch_size=8),  # 4 batches an epoch
                DataLoader(TensorDataset(x[32:], y[32:]), batch_size=8), ckpt_path=ckpt_path)
    return audit, module


def _steps(root):
    events = EventAccumulator(str(root), size_guidance={"scalars": 0})
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(TAG)]


def test_the_epoch_ended_by_a_last_batch_checkpoint_is_audited_when_the_fit_resumes(tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=4, save_top_k=-1)
    reference, _ = _fit(whole, checkpoints=checkpoints)
    (path,) = (tmp_path / "ckpt").glob("epoch=0-step=4.ckpt")  # written before epoch 0's audit
    assert torch.load(path, weights_only=True)["callbacks"][reference.state_key]["audited_epochs"] == []
    resumed, module = _fit(cut, ckpt_path=path)
    assert reference.audited_epochs == resumed.audited_epochs == [0, 1, 2]
    assert sorted(p.name for p in (cut / "reports").glob("*.json")) == ["epoch_0000.json", "epoch_0001.json",
                                                                        "epoch_0002.json"]
    for epoch in (0, 1, 2):  # epoch 0 on the checkpoint's weights (its end's), drift of epoch 1 against it
        a = load_report(whole / "reports" / f"epoch_{epoch:04d}.json")["audits"]["input_effect"]["scalars"]
        b = load_report(cut / "reports" / f"epoch_{epoch:04d}.json")["audits"]["input_effect"]["scalars"]
        assert a == b, epoch
    assert _steps(cut) == _steps(whole)
    assert [step for step, _ in _steps(whole)] == [3, 7, 11]
    _, plain = _fit(tmp_path / "plain", with_callback=False, ckpt_path=path)
    for name, value in plain.state_dict().items():
        assert torch.equal(module.state_dict()[name], value), name
