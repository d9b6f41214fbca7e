"""CausalRepairModule with a BackdoorSuppressionTerm on batches of a mixed collate, the image beside a table:

- inputs ``(image, tab)`` (a dataset giving ``((image, tab), y)``): the set-up's refusal advised ``explain=`` and the
  table as a forward argument, which the term refuses in turn (at construction, at its first step); it names the term's
  one way, a model of one input;
- the table as the batch's forward argument (``unpack_batch -> (image, y, {"tab": tab})``) and ``trigger=None``: the
  set-up ran Neural Cleanse on the images alone and failed inside it, "forward() missing 1 required positional
  argument: 'tab'"; it is refused, before any set-up, with the reason and the way out;
- a mixup drawn in ``on_after_batch_transfer`` from the global RNG: the set-up, reading its inputs through that hook,
  moved the RNG (the training batches blended by other weights); the streams are restored after the read.
"""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal import BackdoorSuppressionTerm, CausalRepairModule
from lightning_causal.causal import Trigger
from tests.helpers.multimodal import ImageTab


def _pairs(n: int = 16) -> list:
    g = torch.Generator().manual_seed(0)
    image, tab = torch.rand(n, 1, 8, 8, generator=g), torch.randn(n, 5, generator=g)
    return [((image[i], tab[i]), i % 2) for i in range(n)]  # collated to [[image, tab], y]


def _trainer(tmp_path) -> pl.Trainer:
    return pl.Trainer(max_epochs=1, limit_train_batches=2, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", default_root_dir=tmp_path)


def test_inputs_of_image_and_table_are_refused_naming_the_terms_one_way(tmp_path):
    t = _trainer(tmp_path)
    with pytest.raises(MisconfigurationException, match=r"hold 2 inputs .*term 'backdoor_suppression' cannot act on one of "
                                                         r"them beside the others .*rows of their own.*a model of one input") as err:
        t.fit(CausalRepairModule(ImageTab(), [BackdoorSuppressionTerm()]), DataLoader(_pairs(), batch_size=8))
    assert "pass CausalRepairModule `explain=`" not in str(err.value)  # refused for this term at construction
    assert t.global_step == 0


def test_the_table_as_forward_argument_is_refused_before_neural_cleanse(tmp_path):
    module = CausalRepairModule(ImageTab(), [BackdoorSuppressionTerm()], unpack_batch=lambda b: (b[0][0], b[1], {"tab": b[0][1]}))
    t = _trainer(tmp_path)
    with pytest.raises(MisconfigurationException, match=r"forward arguments \(\['tab'\]\) beside term 'backdoor_suppression'"
                                                         r".*set-up runs the model on training inputs without them \(e\.g\. the Neural Cleanse"):
        t.fit(module, DataLoader(_pairs(), batch_size=8))
    assert module.terms[0].detection is None and t.global_step == 0


def _mixup_data() -> tuple[list, Trigger]:
    """16 images [1, 8, 8] with labels 0/1 alternating, and a trigger: the first row stamped white, towards class 0."""
    g = torch.Generator().manual_seed(0)
    data = list(zip(torch.rand(16, 1, 8, 8, generator=g), (torch.arange(16) % 2).tolist()))
    return data, Trigger(torch.zeros(1, 8, 8).index_fill_(1, torch.tensor([0]), 1.0), torch.ones(1, 8, 8), 0)


class _Mixup(CausalRepairModule):
    """Mixup in ``on_after_batch_transfer``, its weight drawn from the global RNG (as many recipes do); records the
    weights of the training batches."""

    def on_after_batch_transfer(self, batch, dataloader_idx):  # noqa: ANN001, ANN201
        x, y = batch
        self.lam = float(torch.rand(()))
        return self.lam * x + (1 - self.lam) * x.flip(0), y

    def on_train_batch_start(self, batch, batch_idx):  # noqa: ANN001, ANN201
        self.lams.append(self.lam)  # the weight of the batch training gets (the set-up's read is no batch of it)


def test_a_mixup_drawn_in_the_transfer_hook_is_the_same_with_the_terms_set_up(tmp_path):
    """The set-up reads its inputs through the batch-transfer hooks (the batches training sees); the draw of such a
    mixup moved the global RNG, so the fit's first batch was blended by another weight than without the term."""
    data, trigger = _mixup_data()
    lams = {}
    for name, terms in (("none", []), ("backdoor", [BackdoorSuppressionTerm(trigger)])):
        torch.manual_seed(0)
        module = _Mixup(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), terms)
        module.lams = []
        torch.manual_seed(1)
        _trainer(tmp_path).fit(module, DataLoader(data, batch_size=8))
        lams[name] = module.lams
    assert len(lams["none"]) == 2 and lams["backdoor"] == lams["none"]


class _OwnMixup(_Mixup):
    """The mixup's weight drawn from a generator the module holds (``self.gen``), not the global RNG."""

    def on_after_batch_transfer(self, batch, dataloader_idx):  # noqa: ANN001, ANN201
        x, y = batch
        self.lam = float(torch.rand((), generator=self.gen))
        return self.lam * x + (1 - self.lam) * x.flip(0), y


class _MixupData(pl.LightningDataModule):
    """A datamodule whose ``on_after_batch_transfer`` (Lightning runs it on the module's batches) draws the mixup's
    weight from its own generator; records every weight drawn."""

    def __init__(self, data: list) -> None:
        super().__init__()
        self.data, self.gen, self.lams = data, torch.Generator().manual_seed(5), []

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=8)

    def on_after_batch_transfer(self, batch, dataloader_idx):  # noqa: ANN001, ANN201
        x, y = batch
        self.lams.append(float(torch.rand((), generator=self.mixup_generator())))
        return self.lams[-1] * x + (1 - self.lams[-1]) * x.flip(0), y

    def mixup_generator(self) -> torch.Generator:
        return self.gen


@pytest.mark.parametrize("owner", ["module", "datamodule"])
def test_a_mixup_drawn_from_a_generator_of_the_modules_own_is_the_same_with_the_terms_set_up(owner, tmp_path):
    """As above, the weight drawn from a generator the module or the datamodule holds: the read restored the loader's
    generators and the global ones only, so the training batches were blended by the weights after the set-up's."""
    data, trigger = _mixup_data()
    lams = {}
    for name, terms in (("none", []), ("backdoor", [BackdoorSuppressionTerm(trigger)])):
        torch.manual_seed(0)
        if owner == "module":
            module = _OwnMixup(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), terms)
            module.lams, module.gen = [], torch.Generator().manual_seed(3)
            _trainer(tmp_path).fit(module, DataLoader(data, batch_size=8))
            lams[name] = module.lams
        else:
            dm = _MixupData(data)
            _trainer(tmp_path).fit(CausalRepairModule(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), terms), datamodule=dm)
            lams[name] = dm.lams[-2:]  # the training batches' (the set-up's read draws one before them)
    assert len(lams["none"]) == 2 and lams["backdoor"] == lams["none"]


class _Pipeline:
    """An augmentation pipeline a datamodule holds (``self.augment.ops[0].gen``, as a ``Compose`` of ops does)."""

    def __init__(self, gen: torch.Generator) -> None:
        self.ops = [_DrawsFrom(gen)]


class _DrawsFrom:
    def __init__(self, gen: torch.Generator) -> None:
        self.gen = gen


class _PipelineData(_MixupData):
    """The mixup's weight drawn from a generator the datamodule's augmentation pipeline holds, three attributes down."""

    def __init__(self, data: list) -> None:
        super().__init__(data)
        self.augment = _Pipeline(self.gen)
        del self.gen

    def mixup_generator(self) -> torch.Generator:
        return self.augment.ops[0].gen


def test_a_generator_of_the_datamodules_pipeline_is_restored_though_the_module_reaches_the_datamodule(tmp_path):
    """The set-up restores the generators reachable from the loader, the module and the datamodule; searched in that
    order, the datamodule was reached first through the module (module -> trainer -> ... -> datamodule), a few levels
    from the search's depth limit, and not searched again as a root: a generator three attributes down in it was not
    restored (found by the datamodule alone), so the training batches were blended by the weights after the set-up's."""
    data, trigger = _mixup_data()
    lams = {}
    for name, terms in (("none", []), ("backdoor", [BackdoorSuppressionTerm(trigger)])):
        torch.manual_seed(0)
        dm = _PipelineData(data)
        _trainer(tmp_path).fit(CausalRepairModule(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), terms), datamodule=dm)
        lams[name] = dm.lams[-2:]  # the training batches' (the set-up's read draws one before them)
    assert len(lams["none"]) == 2 and lams["backdoor"] == lams["none"]


def test_a_generator_of_a_module_of_many_attributes_is_restored(tmp_path):
    """A repair module holds 48 attributes of Lightning's and torch's own; the search of an object's attributes stopped
    at 64 (a bound meant for a container's items: a list of a million file names), so a module that keeps 20 options
    as attributes before its mixup's generator had it left out, and the set-up's draw moved the training's weights."""
    data, trigger = _mixup_data()
    lams = {}
    for name, terms in (("none", []), ("backdoor", [BackdoorSuppressionTerm(trigger)])):
        torch.manual_seed(0)
        module = _OwnMixup(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), terms)
        for k in range(20):
            setattr(module, f"option_{k}", k)
        module.lams, module.gen = [], torch.Generator().manual_seed(3)
        _trainer(tmp_path).fit(module, DataLoader(data, batch_size=8))
        lams[name] = module.lams
    assert len(lams["none"]) == 2 and lams["backdoor"] == lams["none"]


class _StatefulData(_MixupData):
    """A datamodule with Lightning's checkpoint hooks: ``load_state_dict`` is called when a fit resumes, and only then."""

    def __init__(self, data: list) -> None:
        super().__init__(data)
        self.loaded: list = []

    def state_dict(self) -> dict:
        return {"lams": len(self.lams)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.loaded.append(state_dict)


def test_the_set_up_does_not_load_a_datamodules_state_as_on_a_resume(tmp_path):
    """Since the set-up's read restores what the datamodule holds (its generators), the datamodule went to the loader's
    restoring of stateful parts too: its ``state_dict()`` was copied and ``load_state_dict`` called at every fit's
    set-up, a hook Lightning calls on resuming from a checkpoint only (a datamodule that skips what it served before on
    resume would skip at a fresh fit). The datamodule's generators are restored, not its checkpoint state."""
    data, trigger = _mixup_data()
    dm = _StatefulData(data)
    _trainer(tmp_path).fit(CausalRepairModule(nn.Sequential(nn.Flatten(), nn.Linear(64, 2)), [BackdoorSuppressionTerm(trigger)]),
                           datamodule=dm)
    assert dm.loaded == [] and len(dm.lams) == 3  # the set-up's read and the two training batches
