"""Batches ``({"x": x, "c": c}, y)`` of a hypernetwork that takes one mapping of its inputs and context (task_newuser124):
the refusal advised ``unpack_batch=lambda batch: (batch[0], batch[1], None)``, the default reading itself, which gives
the mapping again. It now says that the audits call the model with tensors and gives the forward and the
``unpack_batch=`` that work; that advice is followed here through a fit."""

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_causal import CausalAuditCallback, InputEffectAudit


class DictHyper(nn.Module):
    """``{"x", "c"}`` -> the logits of a linear target network whose weights [N, 2, 3] a hypernetwork makes from c."""

    def __init__(self):
        super().__init__()
        self.hyper = nn.Linear(2, 6)

    def forward(self, inputs):
        w = self.hyper(inputs["c"]).view(-1, 2, 3)
        return torch.einsum("nkd,nd->nk", w, inputs["x"])


class Pairs(Dataset):
    def __init__(self, n=24):
        g = torch.Generator().manual_seed(0)
        self.x, self.c, self.y = torch.randn(n, 3, generator=g), torch.randn(n, 2, generator=g), torch.randint(0, 2, (n,), generator=g)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"x": self.x[i], "c": self.c[i]}, self.y[i]


class Lit(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = DictHyper()

    def forward(self, x, c):  # the tensors, as the refusal says
        return self.net({"x": x, "c": c})

    def training_step(self, batch, _):
        inputs, y = batch
        return F.cross_entropy(self.net(inputs), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(tmp_path, callback):
    trainer = pl.Trainer(max_epochs=1, callbacks=[callback], default_root_dir=tmp_path, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    loader = DataLoader(Pairs(), batch_size=8)
    trainer.fit(Lit(), loader, loader)


def test_the_refusal_of_a_mapping_of_inputs_gives_the_way_that_works(tmp_path):
    with pytest.raises(MisconfigurationException) as err:
        _fit(tmp_path, CausalAuditCallback([InputEffectAudit()], probe_size=16))
    message = str(err.value)
    # this LightningModule's forward takes the tensors already (x, c): the unpack_batch alone, in its order (528cca3a;
    # a forward of one mapping is told the wrapper forward too: test_review_s46_late_mapping_advice_training_step)
    assert "which the model's forward takes as tensors in the order ['x', 'c']" in message
    advised = "unpack_batch=lambda batch: ((batch[0]['x'], batch[0]['c']), batch[1], None)"
    assert advised in message
    assert "unpack_batch=lambda batch: (batch[0], batch[1], None)" not in message  # the default reading again
    # the advice, followed: the audit runs on x, c following its rows
    callback = CausalAuditCallback([InputEffectAudit()], probe_size=16, explain="x",
                                   unpack_batch=lambda batch: ((batch[0]["x"], batch[0]["c"]), batch[1], None))
    _fit(tmp_path, callback)
    assert callback.last_results["input_effect"].vectors["mean_abs_effect"].shape == (3,)
