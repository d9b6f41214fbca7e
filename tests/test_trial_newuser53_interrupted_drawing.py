"""Ctrl+C while an audit epoch's TensorBoard content is drawn (newuser53 trial: interrupted fits).

Drawing an epoch's figures takes seconds (1-3 s for a digits MLP's seven audits), so a Ctrl+C often lands there, after
the audits ran and the epoch's JSON report was written. The callback had already recorded the epoch as audited (its
``audited_epochs``, drift bases and audit states): the checkpoint ``OnExceptionCheckpoint`` then wrote held it, and the
fit resumed from that checkpoint never audited that epoch again, so its TensorBoard content stayed the part drawn before
the interrupt, for good (no figures, no text card). The epoch is now left unrecorded, as one whose audit raised: the
resumed fit audits it first and logs and draws it whole, with the numbers of the uninterrupted fit."""

import json
import signal

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import OnExceptionCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.reporting.tensorboard import TensorBoardRenderer
from tests.helpers.lightning import SgdMlp


@pytest.fixture
def drawn(monkeypatch):
    """The epochs whose content the renderer was asked to draw; ``interrupt_at[0]``: the call of ``render_figures``
    (0-based) that raises ``KeyboardInterrupt`` (a Ctrl+C while the figures are drawn)."""
    epochs, interrupt_at, calls = [], [None], [0]
    render, render_figures = TensorBoardRenderer.render, TensorBoardRenderer.render_figures

    def spy_render(self, writer, epoch, *args, **kwargs):
        epochs.append(epoch)
        return render(self, writer, epoch, *args, **kwargs)

    def spy_figures(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] - 1 == interrupt_at[0]:
            raise KeyboardInterrupt
        return render_figures(self, *args, **kwargs)

    monkeypatch.setattr(TensorBoardRenderer, "render", spy_render)
    monkeypatch.setattr(TensorBoardRenderer, "render_figures", spy_figures)
    return epochs, interrupt_at


def _fit(root, ckpt_path=None):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(48, 5, generator=g)
    y = (x[:, 0] - x[:, 3] > 0).long() + (x[:, 1] > 1).long()
    pl.seed_everything(0, verbose=False)
    module = SgdMlp()
    callback = CausalAuditCallback(InputEffectAudit(ace_values=None), probe_size=16)
    trainer = pl.Trainer(max_epochs=3, callbacks=[callback, OnExceptionCheckpoint(root / "exc", filename="exc")],
                         logger=TensorBoardLogger(root, name="tb", version=0), accelerator="cpu", devices=1,
                         enable_progress_bar=False, enable_model_summary=False, deterministic=True)
    trainer.fit(module, DataLoader(TensorDataset(x[:32], y[:32]), batch_size=8),
                DataLoader(TensorDataset(x[32:], y[32:]), batch_size=8), ckpt_path=ckpt_path)
    return callback, module


def _report(root, epoch):
    scalars = json.loads((root / "tb" / "version_0" / "causal_audit" / f"epoch_{epoch:04d}.json").read_text())["audits"]
    return {k: v for k, v in scalars["input_effect"]["scalars"].items()}


def test_a_ctrl_c_while_an_epoch_is_drawn_leaves_it_to_the_resumed_fit_to_audit_and_draw_whole(tmp_path, drawn):
    epochs, interrupt_at = drawn
    interrupt_at[0] = 1  # epoch 1's figures (epoch 0's drawn whole)
    handler = signal.getsignal(signal.SIGINT)
    try:  # Lightning's graceful shutdown: on_exception (the checkpoint written), then SystemExit(1)
        with pytest.raises(SystemExit):
            _fit(tmp_path / "interrupted")
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores SIGINT after a KeyboardInterrupt
    assert epochs == [0, 1]
    saved = torch.load(tmp_path / "interrupted" / "exc" / "exc.ckpt", weights_only=True)
    state = saved["callbacks"][next(k for k in saved["callbacks"] if "Causal" in k)]
    assert saved["epoch"] == 1 and state["audited_epochs"] == [0]  # before: [0, 1], epoch 1 recorded with half its content
    epochs.clear()
    interrupt_at[0] = None
    resumed, module = _fit(tmp_path / "resumed", ckpt_path=tmp_path / "interrupted" / "exc" / "exc.ckpt")
    assert epochs == [1, 2] and resumed.audited_epochs == [0, 1, 2]  # before: [2], epoch 1 never drawn
    whole, twin = _fit(tmp_path / "whole")
    assert all(torch.equal(a, b) for a, b in zip(module.parameters(), twin.parameters()))
    again, uninterrupted = _report(tmp_path / "resumed", 1), _report(tmp_path / "whole", 1)
    assert "drift/mean_abs_effect/spearman" in again  # against epoch 0, as in the uninterrupted fit
    assert again == uninterrupted
