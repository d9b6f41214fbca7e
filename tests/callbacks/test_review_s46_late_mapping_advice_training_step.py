"""Batches ``({"x": x, "c": c}, y)`` (d6635bb3's advice, review_s46_late): the refusal told a LightningModule to take
the tensors in ``forward(self, x, c)``, but a training_step that calls ``self(inputs)`` with the mapping, the usual one,
then fails in the user's own code (forward() missing 'c'). The advice now says the training_step calls
``self.net(inputs)``; followed whole, the fit runs and audits the hidden layer."""

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_causal import CausalAuditCallback, CausalGraphAudit


class DictNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.hyper = nn.Linear(2, 6)

    def forward(self, inputs):
        return torch.einsum("nkd,nd->nk", self.hyper(inputs["c"]).view(-1, 2, 3), inputs["x"])


class Pairs(Dataset):
    def __init__(self, n=16):
        g = torch.Generator().manual_seed(0)
        self.x, self.c, self.y = torch.randn(n, 3, generator=g), torch.randn(n, 2, generator=g), torch.randint(0, 2, (n,), generator=g)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"x": self.x[i], "c": self.c[i]}, self.y[i]


class Lit(pl.LightningModule):  # the usual module: training_step calls self(inputs) with the mapping
    def __init__(self):
        super().__init__()
        self.net = DictNet()

    def forward(self, inputs):
        return self.net(inputs)

    def training_step(self, batch, _):
        inputs, y = batch
        return F.cross_entropy(self(inputs), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Followed(Lit):  # the advice followed whole: forward takes the tensors, training_step calls self.net(inputs)
    def forward(self, x, c):
        return self.net({"x": x, "c": c})

    def training_step(self, batch, _):
        inputs, y = batch
        return F.cross_entropy(self.net(inputs), y)


def _fit(tmp_path, model, callback):
    trainer = pl.Trainer(max_epochs=1, callbacks=[callback], default_root_dir=tmp_path, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    loader = DataLoader(Pairs(), batch_size=8)
    trainer.fit(model, loader, loader)


def test_the_mapping_advice_names_the_training_step_and_followed_whole_it_fits(tmp_path):
    with pytest.raises(MisconfigurationException) as err:
        _fit(tmp_path, Lit(), CausalAuditCallback([CausalGraphAudit(layers=["net.hyper"])], probe_size=16))
    assert "whose training_step then calls `self.net(inputs)` with the mapping, not `self(inputs)`" in str(err.value)
    callback = CausalAuditCallback([CausalGraphAudit(layers=["net.hyper"])], probe_size=16,
                                   unpack_batch=lambda batch: ((batch[0]["x"], batch[0]["c"]), batch[1], None))
    _fit(tmp_path, Followed(), callback)
    assert callback.last_results  # the audit ran on the fit's probe


class ByName(nn.Module):  # takes the tensors already, in another order than the batch's mapping
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 2)

    def forward(self, c, x):
        return self.fc(torch.cat([x, c], 1))


def test_a_forward_that_takes_the_keys_is_given_them_in_its_own_order():
    from lightning_causal.callbacks import audit_model

    data = [({"x": torch.randn(3), "c": torch.randn(2)}, torch.tensor(1)) for _ in range(8)]
    with pytest.raises(MisconfigurationException) as err:
        audit_model(ByName().eval(), [CausalGraphAudit(layers=["fc"])], data, probe_size=8)
    message = str(err.value)
    advised = "unpack_batch=lambda batch: ((batch[0]['c'], batch[0]['x']), batch[1], None)"
    assert advised in message and "self.net(" not in message  # no wrapper to write, and x is not passed as c
    results = audit_model(ByName().eval(), [CausalGraphAudit(layers=["fc"])], data, probe_size=8,
                          unpack_batch=lambda batch: ((batch[0]["c"], batch[0]["x"]), batch[1], None))
    assert results
