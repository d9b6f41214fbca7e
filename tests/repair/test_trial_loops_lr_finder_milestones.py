"""Lightning's learning-rate finder run again at an epoch's start (``LearningRateFinder.lr_find`` in
``on_train_epoch_start``, the "milestones" recipe of Lightning's docs) during a ``CausalRepairModule`` fit
(the loops trial). The search saves a checkpoint and restores it, and the restore queued the terms' state
for the next ``on_train_start``, which this fit never calls again: every later checkpoint was written
without the terms' state, and a fit resumed from one set ``BackdoorSuppressionTerm`` up afresh, its frozen
reference (the model before repair) silently replaced by the checkpoint's half-repaired weights. The
checkpoints now keep the queued state: the resumed reference is the model before repair."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import LearningRateFinder, ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.causal import Trigger
from lightning_causal.repair import BackdoorSuppressionTerm, CausalRepairModule
from lightning_causal.repair.checkpoints import CHECKPOINT_KEY


class _FinderAtMilestones(LearningRateFinder):
    """Lightning's docs' ``FineTuneLearningRateFinder``: the search at the start of the milestone epochs."""

    def __init__(self, milestones: tuple[int, ...], **kwargs) -> None:
        super().__init__(**kwargs)
        self.milestones = milestones

    def on_fit_start(self, trainer, pl_module) -> None:
        return

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch in self.milestones:
            self.lr_find(trainer, pl_module)


def _repair() -> CausalRepairModule:
    trigger = Trigger(torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0]), torch.tensor([0.0, 0.0, 0.0, 3.0, 3.0]), target=0)
    return CausalRepairModule(nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)),
                              [BackdoorSuppressionTerm(trigger)], task_loss=F.cross_entropy, lr=0.05)


def _trainer(root, callbacks, max_epochs) -> pl.Trainer:
    return pl.Trainer(max_epochs=max_epochs, callbacks=callbacks, default_root_dir=root, accelerator="cpu", devices=1,
                      logger=False, enable_progress_bar=False, enable_model_summary=False)


def test_checkpoints_after_a_mid_fit_lr_search_keep_the_terms_state(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 5, generator=g)
    loader = DataLoader(TensorDataset(x, (x[:, 0] > 0).long() + (x[:, 1] > 1).long()), batch_size=8)
    pl.seed_everything(0, verbose=False)
    repair = _repair()
    before = {k: v.clone() for k, v in repair.model.state_dict().items()}  # the model before repair
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    _trainer(tmp_path, [_FinderAtMilestones((1,), num_training_steps=4), checkpoints], max_epochs=3).fit(repair, loader)
    paths = sorted((tmp_path / "ckpt").glob("epoch=*.ckpt"))
    assert len(paths) == 3
    for path in paths:  # the reference saved in every checkpoint is the model before repair
        entry = torch.load(path, weights_only=True)[CHECKPOINT_KEY]
        assert "terms" in entry, path.name
        reference = entry["terms"]["backdoor_suppression"]["reference"]
        assert all(torch.equal(reference[k], v) for k, v in before.items()), path.name
    resumed = _repair()
    _trainer(tmp_path / "resumed", [], max_epochs=3).fit(resumed, loader, ckpt_path=paths[1])
    (term,) = resumed.terms
    reference = term.reference.state_dict()
    assert all(torch.equal(reference[k], v) for k, v in before.items())
    assert not all(torch.equal(resumed.model.state_dict()[k], v) for k, v in before.items())  # it did train


def test_a_resumed_fit_searching_its_rate_at_fit_start_keeps_the_checkpoints_reference(tmp_path):
    """``fit(ckpt_path=...)`` with a ``LearningRateFinder`` (searching at fit start): the search's checkpoint was
    written before the queued terms were applied, so its restore left the terms to be set up afresh, the reference
    being the resumed (half-repaired) weights."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 5, generator=g)
    loader = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8)
    pl.seed_everything(0, verbose=False)
    repair = _repair()
    before = {k: v.clone() for k, v in repair.model.state_dict().items()}
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    _trainer(tmp_path, [checkpoints], max_epochs=1).fit(repair, loader)
    (path,) = (tmp_path / "ckpt").glob("epoch=0*.ckpt")
    resumed = _repair()
    _trainer(tmp_path / "resumed", [LearningRateFinder(num_training_steps=4)], max_epochs=2).fit(resumed, loader, ckpt_path=path)
    reference = resumed.terms[0].reference.state_dict()
    assert all(torch.equal(reference[k], v) for k, v in before.items())
