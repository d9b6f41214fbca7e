"""A warning an audit of the callback gives inside ``trainer.fit`` pointed at Lightning's own line
(``lightning/pytorch/trainer/call.py:228``: the first frame outside the package was Lightning's hook caller, newuser24
trial); it points at the user's ``trainer.fit(...)`` line now, and a direct call of an audit still at its caller."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback
from lightning_causal.audits import InputEffectAudit, Probe
from tests.helpers.lightning import trainer


class _Tabular(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _one_hot_rows(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 3, (n,), generator=g)
    x = torch.cat([torch.randn(n, 1, generator=g), torch.nn.functional.one_hot(codes, 3).float()], 1)  # a one-hot block
    return x, (codes > 0).long()


def _one_hot_warnings(caught):
    return [w for w in caught if "one-hot" in str(w.message)]


def test_an_audits_warning_inside_fit_points_at_the_users_fit_line(tmp_path):
    x, y = _one_hot_rows()
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe=(x, y), probe_size=32)
    t = trainer(tmp_path, max_epochs=1, callbacks=[callback])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = __import__("inspect").currentframe().f_lineno + 1
        t.fit(_Tabular(), DataLoader(TensorDataset(x, y), batch_size=8))
    found = _one_hot_warnings(caught)
    assert found and all((w.filename, w.lineno) == (__file__, line) for w in found), [(w.filename, w.lineno) for w in found]


def test_a_direct_call_still_warns_at_its_caller():
    x, _ = _one_hot_rows()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = __import__("inspect").currentframe().f_lineno + 1
        InputEffectAudit(ace_values=None).run(_Tabular(), Probe(x))
    found = _one_hot_warnings(caught)
    assert found and all((w.filename, w.lineno) == (__file__, line) for w in found)
