"""docs/your_model.md, 'Which module is audited': the EMA snippet runs as printed, and its audits explain the
averaged network (newuser7 trial: the docs named `audited_module` for a GAN's discriminator only, and a user
auditing EMA weights found no way). Its unit importance equals a brute-force loop on ``model.ema.module``, not
the raw network's, and training is bit-identical with or without the callback."""

from __future__ import annotations

import re
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch import callbacks as lightning_callbacks
from torch.utils.data import DataLoader, TensorDataset

PAGE = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"


def _snippet() -> dict:
    code = re.search(r"<!-- ema -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    ns: dict = {}
    exec(compile(code, "<your_model.md ema>", "exec"), ns)  # noqa: S102 - the docs' own example
    return ns


def _fit(ns: dict, callbacks: list, tmp_path: Path) -> pl.LightningModule:
    x = torch.randn(96, 6, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] - x[:, 1] > 0).long()
    pl.seed_everything(0, verbose=False)
    model = ns["EMAClassifier"](torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2)))
    trainer = pl.Trainer(max_epochs=2, logger=False, callbacks=callbacks, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16, shuffle=True),
                DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32))
    return model


def _importance(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """mean over samples of |f_t(x) - f_t(x | do(h_u := 0))| per unit of net[0], t the predicted class, by hand."""
    with torch.no_grad():
        h = net[0](x)
        out = net[2](torch.relu(h))
        t = out.argmax(1, keepdim=True)
        rows = []
        for u in range(h.shape[1]):
            hu = h.clone()
            hu[:, u] = 0
            rows.append((out.gather(1, t) - net[2](torch.relu(hu)).gather(1, t)).abs().mean())
    return torch.stack(rows)


def test_the_ema_snippet_audits_the_averaged_network(tmp_path: Path) -> None:
    ns = _snippet()
    audit = ns["audit"]
    model = _fit(ns, [audit], tmp_path)
    assert audit.audited_epochs == [0, 1]
    probe = torch.randn(96, 6, generator=torch.Generator().manual_seed(0))[64:]
    ema, raw = _importance(model.ema.module, probe), _importance(model.net, probe)
    assert not torch.allclose(ema.max(), raw.max(), rtol=1e-3)  # the two networks differ: the test can tell them apart
    torch.testing.assert_close(torch.tensor(audit.last_scalars["causal/unit_importance/0/top1_importance"]), ema.max().double(),
                               rtol=1e-5, atol=1e-7, check_dtype=False)
    plain = _fit(ns, [], tmp_path)
    for a, b in zip(model.state_dict().values(), plain.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.skipif(not hasattr(lightning_callbacks, "EMAWeightAveraging"), reason="Lightning < 2.6")
def test_with_lightnings_ema_callback_the_audits_explain_the_trained_weights(tmp_path: Path) -> None:
    """The page's sentence on Lightning's EMAWeightAveraging: validation runs on the average, the audits on the trained
    weights (the average has no public handle)."""
    import copy

    from lightning_causal import CausalAuditCallback, UnitImportanceAudit

    class Weights(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            self.trained = copy.deepcopy(pl_module.net)

        def on_validation_batch_start(self, trainer, pl_module, *args):
            self.validated = copy.deepcopy(pl_module.net)

    ns = _snippet()

    class Plain(pl.LightningModule):  # the snippet's module without its own average
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        forward, training_step = ns["EMAClassifier"].forward, ns["EMAClassifier"].training_step

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", torch.nn.functional.cross_entropy(self(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-2)

    weights = Weights()
    ns["EMAClassifier"], audit = Plain, CausalAuditCallback([UnitImportanceAudit(["net.0"])])
    _fit(ns, [audit, lightning_callbacks.EMAWeightAveraging(decay=0.5), weights], tmp_path)
    probe = torch.randn(96, 6, generator=torch.Generator().manual_seed(0))[64:]
    got = audit.last_scalars["causal/unit_importance/net.0/top1_importance"]
    assert got == pytest.approx(float(_importance(weights.trained, probe).max()), rel=1e-5)
    assert got != pytest.approx(float(_importance(weights.validated, probe).max()), rel=1e-3)
