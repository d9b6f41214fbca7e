"""The callback requests the validation data at the start of fit where Lightning has not yet (the first epoch does
not validate, no sanity check), restoring the random states afterwards, so that Lightning's own request at the first
validation happens at the same point of the random streams. It restored the datamodule's generators only: a
LightningModule whose ``val_dataloader`` draws a random subset from its own ``torch.Generator`` (which its
``train_dataloader`` shuffles with too) had that generator moved by the request, so the fit with the callback trained
on another order and validated on other samples than the same fit without it. The module's generators are restored
too now, and those held by its submodules at any depth (``data_reading._find_rngs`` walks a module's tree whole)."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.data_reading import rngs_untouched


class _Draws(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gen = torch.Generator().manual_seed(7)


class _SelfSampling(pl.LightningModule):
    """Shuffles its training data and draws its validation subset from one generator of its own (``self.gen``), or
    draws the subset from one held three modules below it (``deep=True``: ``self.data.pick.draws.gen``, reached
    through the module's tree only)."""

    def __init__(self, deep: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.deep = deep
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        if deep:
            self.data = nn.Module()
            self.data.pick = nn.Module()
            self.data.pick.draws = _Draws()
            self._gen = lambda: self.data.pick.draws.gen
        else:
            self.gen = torch.Generator().manual_seed(7)
            self._gen = lambda: self.gen
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(64, 4, generator=g), torch.randint(0, 2, (64,), generator=g)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def train_dataloader(self) -> DataLoader:  # deep: a loader of its own generator (the trainer's loops hold it)
        gen = torch.Generator().manual_seed(3) if self.deep else self._gen()
        return DataLoader(TensorDataset(self.x, self.y), batch_size=8, shuffle=True, generator=gen)

    def val_dataloader(self) -> DataLoader:
        subset = torch.randperm(64, generator=self._gen())[:16].tolist()  # a random validation subset
        return DataLoader(Subset(TensorDataset(self.x, self.y), subset), batch_size=8)

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        return F.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        self.seen.append(batch[0].clone())
        self.log("val_loss", F.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(callbacks: list, root: Path, deep: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    model = _SelfSampling(deep)
    trainer = pl.Trainer(max_epochs=2, check_val_every_n_epoch=2, num_sanity_val_steps=0, logger=False,
                         default_root_dir=root,
                         callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False)
    trainer.fit(model)
    return [p.detach().clone() for p in model.parameters()], model.seen


def test_the_modules_own_generator_is_put_back_after_the_validation_request(tmp_path: Path):
    weights, seen = _fit([], tmp_path / 'plain')
    audited_weights, audited_seen = _fit([CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8)],
                                         tmp_path / 'audited')
    assert len(seen) == len(audited_seen) == 2
    assert all(torch.equal(a, b) for a, b in zip(seen, audited_seen))  # the same validation samples
    assert all(torch.equal(a, b) for a, b in zip(weights, audited_weights))  # bit-identical weights


def test_a_generator_three_modules_below_is_put_back_too(tmp_path: Path):
    weights, seen = _fit([], tmp_path / 'plain', deep=True)
    audited_weights, audited_seen = _fit([CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8)],
                                         tmp_path / 'audited', deep=True)
    assert all(torch.equal(a, b) for a, b in zip(seen, audited_seen))
    assert all(torch.equal(a, b) for a, b in zip(weights, audited_weights))


def test_rngs_untouched_reaches_a_generator_deep_in_a_module_tree():
    model = nn.Sequential(*[nn.Sequential(nn.Sequential(nn.Sequential(_Draws())))])  # 4 modules below the root
    gen = model[0][0][0][0].gen
    state = gen.get_state()
    with rngs_untouched(model):
        torch.rand(3, generator=gen)
    assert torch.equal(gen.get_state(), state)
