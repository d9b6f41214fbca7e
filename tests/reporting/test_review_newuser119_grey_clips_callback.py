"""Review of 9109bd00 (figure_kinds.GREY_CLIPS): the warning for grey clips [N, T, H, W] under figure_kind="frames"
said "Explain a wrapper that takes [N, 1, T, H, W]" but not how the callback, which explains the LightningModule,
comes to explain it. It now names the module's ``audited_module`` property; followed literally with the callback (a
wrapper returned by ``audited_module``, the warning's ``unpack_batch`` and frames mask), the fit runs, training on the
grey clips as before, and no frames warning is left."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.reporting.figure_kinds import skip_reason
from tests.reporting.test_trial_newuser119_grey_clip_frames import (
    Unsqueezed,  # the warning's wrapper
)

T = 4


class FrameNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head = nn.Conv2d(1, 3, 3, padding=1), nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # grey clips [N, T, H, W], frames folded into the batch
        n = x.shape[0]
        return self.head(F.relu(self.conv(x.flatten(0, 1).unsqueeze(1))).mean((2, 3))).view(n, T, -1).mean(1)


class Lit(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = FrameNet()
        self.wrapper = Unsqueezed(self.model)  # no weights of its own

    @property
    def audited_module(self) -> nn.Module:
        return self.wrapper

    def training_step(self, batch, _):
        x, y = batch
        assert x.dim() == 4  # training takes the grey clips as they are
        return F.cross_entropy(self.model(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_the_grey_clips_way_names_audited_module():
    assert "LightningModule's property audited_module returns it" in skip_reason("frames", torch.zeros(2, T, 5, 5))


def test_followed_with_the_callback_no_frames_warning_is_left(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, T, 6, 6, generator=g), torch.randint(0, 2, (16,), generator=g)
    torch.manual_seed(0)
    cb = CausalAuditCallback([InputEffectAudit(feature_mask=torch.arange(T).reshape(1, 1, T, 1, 1))],
                             probe=DataLoader(TensorDataset(x, y), batch_size=8), probe_size=4, figure_kind="frames",
                             unpack_batch=lambda b: (b[0].unsqueeze(1), b[1], None), report_dir=tmp_path / "r")
    trainer = pl.Trainer(max_epochs=1, callbacks=[cb], default_root_dir=tmp_path, enable_progress_bar=False,
                         enable_model_summary=False, logger=pl.loggers.TensorBoardLogger(tmp_path), enable_checkpointing=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        trainer.fit(Lit(), DataLoader(TensorDataset(x, y), batch_size=8))
    assert not [str(w.message) for w in seen if "figure kind 'frames'" in str(w.message)]
    assert (tmp_path / "r" / "epoch_0000.json").exists()
