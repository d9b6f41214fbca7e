"""A model with a lazy module (nn.LazyLinear) not built before the fit: CausalAuditCallback's checks of its probe (a
forward pass and every audit's dry run, at the training's start) built it, inside the audits' seeded generators, so its
weights were drawn from the audits' seed and not training's, and the fit ended with other weights than the same fit
without the callback (max difference 0.8 after 2 epochs). Where the model holds lazy modules not built yet, the probe
is checked after the first training step, which builds them: the fit is the one without the callback."""

import logging

import torch
from lightning.pytorch import LightningModule, seed_everything
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback
from lightning_causal.audits import InputEffectAudit, UnitImportanceAudit
from tests.helpers.lightning import trainer

_G = torch.Generator().manual_seed(0)
_X, _Y = torch.randn(32, 5, generator=_G), torch.randint(0, 2, (32,), generator=_G)


class _Lazy(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.Linear(8, 2))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(tmp_path, callbacks):
    seed_everything(1, verbose=False)
    model = _Lazy()
    fit = trainer(tmp_path, max_epochs=2, callbacks=callbacks)
    fit.fit(model, DataLoader(TensorDataset(_X, _Y), batch_size=8, shuffle=True), DataLoader(TensorDataset(_X, _Y), batch_size=8))
    return model, fit


def test_a_lazy_module_is_built_by_training_and_the_fit_is_the_one_without_the_callback(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    plain, _ = _fit(tmp_path / "plain", [])
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None), UnitImportanceAudit(layers=["net.0"])], probe_size=8,
                             report_dir=str(tmp_path / "reports"))
    audited, fit = _fit(tmp_path / "audited", [cb])
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), audited.parameters()))
    assert cb.audited_epochs == [0, 1] and cb.probe is not None and cb.dry_run_tags
    assert "checks its probe after the first training step: the model's lazy modules (net.0) are built by that step" in caplog.text
    optimised = {id(p) for group in fit.optimizers[0].param_groups for p in group["params"]}
    assert type(audited.net[0]) is nn.Linear and all(id(p) in optimised for p in audited.parameters())


def test_a_model_without_lazy_modules_is_checked_at_the_start_as_before(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    seed_everything(1, verbose=False)
    model = _Lazy()
    model(_X[:1])  # built before the fit
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8, report_dir=str(tmp_path / "reports"))
    seen = []
    original = cb._checked

    def checked(probe, trainer_, module):
        seen.append(trainer_.global_step)
        original(probe, trainer_, module)

    cb._checked = checked
    trainer(tmp_path, max_epochs=1, callbacks=[cb]).fit(model, DataLoader(TensorDataset(_X, _Y), batch_size=8),
                                                        DataLoader(TensorDataset(_X, _Y), batch_size=8))
    assert seen == [0] and "lazy modules" not in caplog.text and cb.audited_epochs == [0]
