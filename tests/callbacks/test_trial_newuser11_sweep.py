"""Many fits in one process (a hyper-parameter sweep, a notebook loop), noticed by the newuser11 trial.

- A callback reused for the next fit ("starts fresh") kept its renderer's memory of the TensorBoard warnings
  it had given (maps it cannot draw, a sequence drawn channels first): the second and later fits drew the maps
  the same way and said nothing.
- One ``TensorBoardLogger`` given to every fit of a loop (the same run directory) with a fresh callback each:
  the renderers numbered their text cards in the order they first wrote to the logger's writer, so fit 2's card
  went to ``causal/summary_2`` and fit 3's to ``causal/summary_3``, as if the fits were several audit callbacks
  of one fit; TensorBoard then showed the last fit's card under a third tag.
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit

CHANNELS_FIRST = "figure kind 'sequence' draws inputs of shape [2, 10, 8] channels first"


class Flat(pl.LightningModule):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(features, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        return F.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        self.log("val_loss", F.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _data(*shape: int) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(16, *shape, generator=g), torch.randint(0, 2, (16,), generator=g)), batch_size=8)


def _fit(model: pl.LightningModule, callback: CausalAuditCallback, logger: TensorBoardLogger, data: DataLoader) -> None:
    trainer = pl.Trainer(max_epochs=1, logger=logger, callbacks=[callback], enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, log_every_n_steps=1)
    trainer.fit(model, data, data)


def test_a_reused_callback_gives_its_tensorboard_warnings_at_every_fit(tmp_path):
    data = _data(10, 8)  # [N, 10, 8]: drawn as 10 channels along 8 steps, with a note naming figure_kind
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=2, figure_kind="sequence")
    for fit in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _fit(Flat(80), callback, TensorBoardLogger(tmp_path, name="reused", version=fit), data)
        notes = [w for w in caught if str(w.message).startswith(CHANNELS_FIRST)]
        assert len(notes) == 1, f"fit {fit}: {len(notes)} notes"  # once per fit, not once per callback


@pytest.mark.filterwarnings("ignore:CausalAuditCallback. `report_dir`")  # the one run directory, as expected
def test_one_logger_for_every_fit_keeps_each_fits_card_at_causal_summary(tmp_path):
    logger = TensorBoardLogger(tmp_path, name="sweep")
    cards: list[tuple[str, int]] = []
    writer = logger.experiment  # the one SummaryWriter every fit writes to
    add_text = writer.add_text

    def recorded(tag, text, step=None, *args, **kwargs):  # noqa: ANN001, ANN202
        cards.append((tag, step))
        return add_text(tag, text, step, *args, **kwargs)

    writer.add_text = recorded
    data = _data(6)
    for _ in range(3):
        _fit(Flat(6), CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8), logger, data)
    assert [tag for tag, _ in cards] == ["causal/summary"] * 3
    # two audit callbacks of one fit still keep their own cards
    cards.clear()
    first, second = (CausalAuditCallback([InputEffectAudit(ace_values=None, name=n)], probe_size=8) for n in ("a", "b"))
    trainer = pl.Trainer(max_epochs=1, logger=logger, callbacks=[first, second], enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, log_every_n_steps=1)
    trainer.fit(Flat(6), data, data)
    assert sorted(tag for tag, _ in cards) == ["causal/summary", "causal/summary_2"]


def test_a_callback_kept_after_fit_keeps_neither_the_model_nor_the_trainer(tmp_path):
    """Lightning attaches ``callback.log = pl_module.log`` (and ``log_dict``) to every callback at the start of a
    run; a sweep keeping each fit's callback (or reusing one) kept the last model, its trainer and optimizer
    states alive after ``del model, trainer``: a GPU sweep held a second model while the next fit built its own."""
    import gc
    import weakref

    data = _data(6)
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8)
    for version in range(2):  # the same callback for a second fit
        model = Flat(6)
        trainer = pl.Trainer(max_epochs=1, logger=TensorBoardLogger(tmp_path, name="kept", version=version),
                             callbacks=[callback], enable_progress_bar=False, enable_model_summary=False,
                             enable_checkpointing=False, log_every_n_steps=1)
        trainer.fit(model, data, data)
        model_ref, trainer_ref = weakref.ref(model), weakref.ref(trainer)
        del model, trainer
        gc.collect()
        assert model_ref() is None and trainer_ref() is None, f"fit {version}"
        assert callback.audited_epochs == [0] and callback.last_scalars  # what a sweep reads stays
