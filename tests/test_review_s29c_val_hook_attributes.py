"""Review of 36f017aa: the callback's request of the validation data for its probe (the first epoch does not validate, no
sanity check) put back the plain values a ``val_dataloader`` hook set right after the request, before the probe was read,
and only those. A collate function reading a value the hook sets then found it gone (the fit stopped with an
AttributeError), a flag put back beside the list it guards had the first validation fill the list again (validated on every
sample twice), and a module the hook registers over a plain ``None`` stayed registered behind the ``None`` (its weights in
the state_dict of the first epoch). Each fit below must validate on what, and hold what, the same fit without the callback
does."""

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.callbacks._probe import attributes_untouched
from tests.helpers.lightning import SgdMlp

_X = torch.randn(32, 5, generator=torch.Generator().manual_seed(0))
_Y = (_X[:, 0] > 0).long()


class _Items(Dataset):
    def __init__(self, items: list) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


class _Data(pl.LightningDataModule):
    def train_dataloader(self):
        return DataLoader(TensorDataset(_X[:16], _Y[:16]), batch_size=8)


class _ScaledByHook(_Data):
    """A collate function of the datamodule reading a value its hook sets."""

    def val_dataloader(self):
        self.scale = 2.0
        return DataLoader(TensorDataset(_X[16:], _Y[16:]), batch_size=8, collate_fn=self.collate)

    def collate(self, items):
        return torch.stack([x for x, _ in items]) * self.scale, torch.stack([y for _, y in items])


class _LoadedOnce(_Data):
    """A flag guarding the list the hook fills."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded, self.items = False, []

    def val_dataloader(self):
        if not self.loaded:
            self.items.extend(zip(_X[16:], _Y[16:]))
            self.loaded = True
        return DataLoader(_Items(self.items), batch_size=8)


class _Net(SgdMlp):
    def __init__(self) -> None:
        super().__init__()
        self.validated: list[torch.Tensor] = []
        self.keys_at_start: list[str] = []
        self.head = None

    def on_train_batch_start(self, batch, batch_idx):
        if not self.keys_at_start:
            self.keys_at_start = sorted(self.state_dict())

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        self.validated.append(batch[0].clone())


class _HeadByHook(_Net):
    """The module's own hook registers a module where ``__init__`` set ``None``."""

    def val_dataloader(self):
        self.head = nn.Linear(3, 3)
        return DataLoader(TensorDataset(_X[16:], _Y[16:]), batch_size=8)


def _fit(tmp_path, make, with_callback):
    pl.seed_everything(0, verbose=False)
    data, module = make()
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=4, report_dir=tmp_path)
    trainer = pl.Trainer(max_epochs=2, check_val_every_n_epoch=2, num_sanity_val_steps=0, logger=False, accelerator="cpu",
                         devices=1, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                         callbacks=[callback] if with_callback else [])
    if data is None:
        trainer.fit(module, train_dataloaders=_Data().train_dataloader())
    else:
        trainer.fit(module, datamodule=data)
    return module, callback


@pytest.mark.parametrize("make", [lambda: (_ScaledByHook(), _Net()), lambda: (_LoadedOnce(), _Net()),
                                  lambda: (None, _HeadByHook())], ids=["collate_reads_hook_value", "flag_and_list", "head"])
def test_a_val_hook_that_sets_attributes_leaves_the_fit_as_without_the_callback(tmp_path, make):
    plain, _ = _fit(tmp_path / "plain", make, False)
    audited, callback = _fit(tmp_path / "audited", make, True)  # before: AttributeError 'scale' / 4 batches / head.*
    scale = 2.0 if isinstance(make()[0], _ScaledByHook) else 1.0  # the collate's, on the validated rows
    assert [v.shape[0] for v in plain.validated] == [8, 8]  # the 16 validation rows once, at epoch 1
    assert torch.equal(torch.cat(plain.validated), _X[16:] * scale)
    assert len(audited.validated) == 2 and all(torch.equal(a, b) for a, b in zip(audited.validated, plain.validated))
    assert torch.equal(callback.probe.first, _X[16:20] * scale)  # read through the hook's collate, as validation reads
    assert audited.keys_at_start == plain.keys_at_start == ["net.0.bias", "net.0.weight", "net.2.bias", "net.2.weight"]
    assert isinstance(audited.head, type(plain.head))  # the hook's Linear once the fit has validated
    for name, value in plain.net.state_dict().items():
        assert torch.equal(audited.net.state_dict()[name], value), name


def test_attributes_untouched_puts_back_bindings_and_the_items_of_containers_in_place():
    class Owner:
        def __init__(self) -> None:
            self.n, self.cache, self.items, self.table, self.seen = 0, None, [1, 2], {"a": 1}, {3}

    owner = Owner()
    items, table, seen = owner.items, owner.table, owner.seen
    with attributes_untouched(owner, None):
        owner.n, owner.cache, owner.added = 5, [7], "x"
        owner.items.append(3)
        owner.table["b"] = 2
        del owner.table["a"]
        owner.seen.clear()
    assert (owner.n, owner.cache, hasattr(owner, "added")) == (0, None, False)
    assert owner.items is items and items == [1, 2]  # the same list, its items back
    assert owner.table is table and list(table.items()) == [("a", 1)]
    assert owner.seen is seen and seen == {3}
