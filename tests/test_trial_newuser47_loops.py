"""A new user's trial of loop shapes (newuser47): the package's own ``models.LightningClassifier`` with several
validation, test and predict dataloaders, and ``trainer.test``, with the audit callback attached."""

import warnings

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.models import MLP, LightningClassifier


def _data(seed: int, n: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())


def test_the_classifier_validates_tests_and_predicts_on_several_dataloaders_with_the_callback(tmp_path):
    # before the fix: the fit's sanity check raised Lightning's RuntimeError 'You provided multiple `val_dataloader`, but
    # no `dataloader_idx` argument in `LightningClassifier.validation_step()`' (a step the user cannot edit without a
    # subclass), and `trainer.test` 'No `test_step()` method defined'
    pl.seed_everything(0)
    model = LightningClassifier(MLP(4, hidden=(8,), out_features=2), lr=1e-2)
    first, second = DataLoader(_data(1, 16), batch_size=8), DataLoader(_data(2, 8), batch_size=8)
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8, report_dir=tmp_path / "reports")
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on few batches and workers
        trainer.fit(model, DataLoader(_data(0, 32), batch_size=8), [first, second])
        assert cb.audited_epochs == [0] and cb.probe_origin == "val_dataloaders[0] of 2"
        validated = trainer.validate(model, [first, second], verbose=False)
        tested = trainer.test(model, [first, second], verbose=False)
        predicted = trainer.predict(model, [first, second])
    net = model.model.eval()
    with torch.no_grad():
        for i, loader in enumerate((first, second)):
            x, y = loader.dataset.tensors
            loss = float(torch.nn.functional.cross_entropy(net(x), y))
            assert abs(validated[i][f"val_loss/dataloader_idx_{i}"] - loss) < 1e-5
            assert abs(tested[i][f"test_loss/dataloader_idx_{i}"] - loss) < 1e-5
            assert torch.allclose(torch.cat(predicted[i]), net(x))
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["epoch_0000.json"]
