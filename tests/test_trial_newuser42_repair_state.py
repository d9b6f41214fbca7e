"""A stateful recurrent model fine-tuned with repair terms (newuser42 trial): the terms run the model on rows of
their own (a trigger's stamped copies, augmented rows), and before, those passes set the state the model carries
across batches (``self.h = h.detach()``), so every next training step started from the state of the term's rows
([1, 256, 32] for BackdoorSuppressionTerm on batches of 64) instead of the task's. The terms' passes now leave
the state as the task's step set it, for a plain attribute and for a registered buffer."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule
from lightning_causal.repair.base import RepairTerm
from tests.helpers.stateful import Streaming

B, T, F, H = 8, 4, 3, 5


class OtherRows(RepairTerm):
    """A term that runs the model on rows of its own, three times as many as the batch."""

    def loss(self, model, x, y):
        return model(torch.cat([x, x.flip(0), 1 - x])).pow(2).mean()


@pytest.mark.parametrize("buffer", [False, True])
def test_each_step_starts_from_the_state_the_task_step_left(buffer, tmp_path):
    pl.seed_everything(0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, T, F, generator=g), torch.randint(0, 2, (40,), generator=g)
    model = Streaming(buffer, B, F, H)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(CausalRepairModule.wrap(model, [OtherRows(weight=1.0)]), DataLoader(TensorDataset(x, y), batch_size=B))
    assert len(model.entering) == 5
    assert all(entering is left for entering, left in zip(model.entering[1:], model.left))  # the term's was [1, 24, 5]
    assert model.h is model.left[-1] and model.h.shape == (1, B, H)
