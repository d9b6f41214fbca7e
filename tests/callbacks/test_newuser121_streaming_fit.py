"""docs/your_model.md's streaming recipe (newuser121 trial): a GRU run chunk by chunk with its state kept on the module
(``self.h = h.detach()``), reset by ``reset_state()`` at each utterance, trained by truncated back-propagation through
time written by hand in ``training_step``, and audited through an ``audited_module`` that resets the state and runs the
whole utterance. The label is set by an event at step 1, which only the carried state brings to the last chunk.
Before, the unit audit of the chunked GRU stopped the fit at set-up ("uses another element" of its tuple)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, UnitImportanceAudit
from tests.causal.test_newuser121_streaming_state import CH, Utterance

T, F, H = 12, 3, 8
STEPS = torch.arange(T).reshape(T, 1).expand(T, F)


class StreamingGRU(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.gru, self.head = nn.GRU(F, H, batch_first=True), nn.Linear(H, 2)
        self.reset_state()

    @property
    def audited_module(self) -> nn.Module:
        return Utterance(self)

    def reset_state(self) -> None:
        self.h = None

    def forward(self, chunk: torch.Tensor) -> torch.Tensor:
        out, h = self.gru(chunk, self.h)
        self.h = h.detach()
        return self.head(out[:, -1])

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        x, y = batch
        self.reset_state()
        return sum(nn.functional.cross_entropy(self(chunk), y) for chunk in x.split(CH, 1))

    def validation_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        x, y = batch
        self.reset_state()
        for chunk in x.split(CH, 1):
            logits = self(chunk)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.Adam(self.parameters(), lr=3e-2)


def _fit(callbacks: list, tmp_path) -> StreamingGRU:  # noqa: ANN001
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(160, T, F, generator=g) * 0.5, torch.randint(0, 2, (160,), generator=g)
    x[:, 1, 0] = torch.where(y == 1, 2.0, -2.0)  # the planted event
    pl.seed_everything(0)
    model = StreamingGRU()
    trainer = pl.Trainer(max_epochs=4, callbacks=callbacks, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, DataLoader(TensorDataset(x[:128], y[:128]), batch_size=32, shuffle=True),
                DataLoader(TensorDataset(x[128:], y[128:]), batch_size=32))
    return model


def test_a_streaming_model_audited_whole_trains_alike_and_finds_the_event(tmp_path):
    callback = CausalAuditCallback([InputEffectAudit(feature_mask=STEPS, ace_values=None),
                                    UnitImportanceAudit(["stream.gru"], unit_dim=-1)], probe_size=32, every_n_epochs=4)
    audited, plain = _fit([callback], tmp_path / "a"), _fit([], tmp_path / "b")
    assert all(torch.equal(a, b) for a, b in zip(audited.parameters(), plain.parameters()))
    assert torch.equal(audited.h, plain.h)  # the state the last validation batch left
    effects = callback.last_results["input_effect"].vectors["mean_abs_effect"]
    assert int(effects.argmax()) == 1 and effects[1] > 5 * effects[2:].max()
    assert callback.last_results["unit_importance"].vectors
