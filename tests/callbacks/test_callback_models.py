"""The callback on models and batches beyond tensor-in, logits-out and ``(x, y)``: model outputs,
dict and token batches, ``unpack_batch``, augmenting datasets, fail-fast set-up, report
directories that cannot be written, compiled modules and a second ``fit``."""

from __future__ import annotations

import errno
import os

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lightning_causal import (
    BackdoorAudit,
    CausalAuditCallback,
    CounterfactualAudit,
    InputEffectAudit,
    LayerMapAudit,
    UnitImportanceAudit,
)
from lightning_causal.reporting import json_report
from tests.helpers.lightning import (
    digits_like,
    quick_trainer,
    reports,
    small_module,
    synthetic_loaders,
)


# ------------------------------------------------------------------------ a token model, dict batches
class TokenClassifier(pl.LightningModule):
    """Embedding + masked mean pooling; returns a dict with ``"logits"`` (as Hugging Face models do)."""

    def __init__(self, vocab: int = 16, classes: int = 2) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 8)
        self.hidden = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
        self.head = nn.Linear(8, classes)

    def forward(self, input_ids, attention_mask=None):
        h = self.hidden(self.emb(input_ids))
        w = attention_mask.unsqueeze(-1).float()
        return {"logits": self.head((h * w).sum(1) / w.sum(1))}

    def training_step(self, batch, batch_idx):
        out = self(batch["input_ids"], attention_mask=batch["attention_mask"])["logits"]
        return nn.functional.cross_entropy(out, batch["labels"])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class TokenDataset(Dataset):
    """Sequences of 6 token ids; label 1 when token 3 occurs; the last positions are padding."""

    def __init__(self, n: int = 40) -> None:
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(4, 16, (n, 6), generator=g)
        self.ids[::2, 1] = 3
        self.lengths = torch.randint(3, 7, (n,), generator=g)
        self.lengths[::2] = 6

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):
        att = (torch.arange(6) < self.lengths[i]).long()
        return {"input_ids": self.ids[i] * att, "attention_mask": att, "labels": (self.ids[i] == 3).any().long()}


def test_dict_token_batches_with_model_output(tmp_path):
    torch.manual_seed(0)
    module = TokenClassifier()
    cb = CausalAuditCallback([InputEffectAudit(baseline=0, ace_values=None), UnitImportanceAudit(["hidden.1"], unit_dim=-1)],
                             probe_size=8, report_dir=tmp_path / "r")
    quick_trainer(callbacks=[cb], max_epochs=1).fit(module, DataLoader(TokenDataset(), batch_size=8))
    assert cb.audited_epochs == [0]
    assert cb.last_results["unit_importance"].vectors["importance/hidden.1"].shape == (8,)  # neurons, not the 6 positions
    assert set(cb.probe.additional_forward_args) == {"attention_mask"}
    effects = cb.last_results["input_effect"].maps["effect"]  # [8, 6]: one group per position
    padded = cb.probe.additional_forward_args["attention_mask"] == 0
    assert effects.shape == (8, 6) and padded.any() and (effects[padded] == 0).all()
    assert "input_effect" in reports(tmp_path / "r")["epoch_0000.json"]["audits"]


def test_neurons_of_a_token_model_need_unit_dim_and_fail_before_the_first_step(tmp_path):
    # the default units (dimension 1) of the [N, 6, 8] output of Linear + ReLU would be the 6 positions
    cb = CausalAuditCallback([UnitImportanceAudit(["hidden.1"])], probe_size=4, report_dir=tmp_path)
    t = quick_trainer(callbacks=[cb], max_epochs=1)
    with pytest.raises(MisconfigurationException, match=r"'hidden.1'.*features last.*`unit_dim=-1`"):
        t.fit(TokenClassifier(), DataLoader(TokenDataset(), batch_size=8))
    assert t.global_step == 0


def test_a_float_baseline_for_token_inputs_fails_before_the_first_step(tmp_path):
    module = TokenClassifier()
    cb = CausalAuditCallback([InputEffectAudit(baseline=0.5, ace_values=None)], probe_size=4, report_dir=tmp_path)
    t = quick_trainer(callbacks=[cb], max_epochs=1)
    with pytest.raises(MisconfigurationException, match="`baseline` to be an integer"):
        t.fit(module, DataLoader(TokenDataset(), batch_size=8))
    assert t.global_step == 0


# ------------------------------------------------------------------------ (x, y, w) batches
def _weighted_loaders():
    x, y = digits_like(64)
    w = torch.rand(64, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(x, y, w), batch_size=16)


class WeightedModule(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.inner = small_module(batch_norm=False, dropout=0.0).model

    def forward(self, x):
        return self.inner(x)

    def training_step(self, batch, batch_idx):
        x, y, w = batch
        return (nn.functional.cross_entropy(self(x), y, reduction="none") * w).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def test_three_tensor_batches_fail_at_setup_naming_unpack_batch(tmp_path):
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], report_dir=tmp_path)
    t = quick_trainer(callbacks=[cb], max_epochs=1)
    with pytest.raises(MisconfigurationException, match=r"`unpack_batch=lambda batch: \(batch\[0\], batch\[1\], None\)`"):
        t.fit(WeightedModule(), _weighted_loaders())
    assert t.global_step == 0


def test_unpack_batch_reads_three_tensor_batches(tmp_path):
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], probe_size=8, report_dir=tmp_path,
                             unpack_batch=lambda batch: (batch[0], batch[1], None))
    quick_trainer(callbacks=[cb], max_epochs=1).fit(WeightedModule(), _weighted_loaders())
    x, y = digits_like(64)
    assert torch.equal(cb.probe.first, x[:8]) and torch.equal(cb.probe.labels, y[:8]) and cb.audited_epochs == [0]


class TwoInputs(pl.LightningModule):
    """``model(image, side)`` trained on ``((image, side), y)`` samples."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
        self.side = nn.Linear(2, 4)
        self.head = nn.Linear(8, 3)

    def forward(self, image, side):
        return self.head(torch.relu(torch.cat([self.conv(image), self.side(side)], 1)))

    def training_step(self, batch, batch_idx):
        (image, side), y = batch
        return nn.functional.cross_entropy(self(image, side), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


class TwoInputData(Dataset):
    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.image, self.side, self.y = torch.rand(40, 1, 8, 8, generator=g), torch.randn(40, 2, generator=g), torch.arange(40) % 3

    def __len__(self) -> int:
        return 40

    def __getitem__(self, i):
        return (self.image[i], self.side[i]), self.y[i]


def test_several_inputs_by_the_default_unpack(tmp_path):
    from lightning_causal.causal import unit_effects

    data = TwoInputData()
    cb = CausalAuditCallback([UnitImportanceAudit(["conv.0"])], probe_size=16, report_dir=tmp_path)
    module = TwoInputs()
    quick_trainer(callbacks=[cb], max_epochs=1).fit(module, DataLoader(data, batch_size=8), DataLoader(data, batch_size=8))
    assert isinstance(cb.probe.inputs, tuple) and torch.equal(cb.probe.inputs[1], data.side[:16])
    report = list(reports(tmp_path).values())[-1]
    expected = unit_effects(module.eval(), (data.image[:16], data.side[:16]), "conv.0").abs().mean(0)
    assert torch.allclose(torch.tensor(report["audits"]["unit_importance"]["vectors"]["importance/conv.0"]), expected, atol=1e-6)
    refused = CausalAuditCallback([InputEffectAudit()], probe_size=16, report_dir=tmp_path / "b")
    with pytest.raises(MisconfigurationException, match="Expected one input tensor for InputEffectAudit"):
        quick_trainer(callbacks=[refused], max_epochs=1).fit(TwoInputs(), DataLoader(data, batch_size=8), DataLoader(data, batch_size=8))


def test_unpack_batch_must_be_callable():
    with pytest.raises(MisconfigurationException, match="`unpack_batch`"):
        CausalAuditCallback([InputEffectAudit()], unpack_batch="first")


# ------------------------------------------------------------------------ augmenting datasets
class Augmenting(Dataset):
    """Adds noise from the global RNG in ``__getitem__`` (random augmentation)."""

    def __init__(self, x, y) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i] + 0.05 * torch.randn(self.x[i].shape), self.y[i]


def _fit_augmenting(callbacks, with_val: bool) -> dict[str, torch.Tensor]:
    x, y = digits_like(80)
    pl.seed_everything(7, workers=True)
    module = small_module()
    train = DataLoader(Augmenting(x[:64], y[:64]), batch_size=16, shuffle=True)
    val = DataLoader(Augmenting(x[64:], y[64:]), batch_size=16) if with_val else None
    quick_trainer(callbacks=callbacks, max_epochs=2).fit(module, train, val)
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("with_val", [True, False], ids=["probe-from-validation", "probe-from-training"])
def test_augmenting_dataset_training_is_bit_identical_with_the_callback(tmp_path, with_val):
    plain = _fit_augmenting([], with_val)
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], probe_size=8, report_dir=tmp_path)
    audited = _fit_augmenting([cb], with_val)
    assert cb.audited_epochs == [0, 1]
    assert all(torch.equal(plain[k], audited[k]) for k in plain)


# ------------------------------------------------------------------------ fail fast
@pytest.mark.parametrize(
    ("factory", "error", "match"),
    [
        (lambda: InputEffectAudit(target=-1), ValueError, "`target`"),
        (lambda: InputEffectAudit(baseline="zero"), TypeError, "`baseline`"),
        (lambda: InputEffectAudit(feature_mask=[[0, 1]]), TypeError, "`feature_mask`"),
        (lambda: InputEffectAudit(feature_mask=torch.zeros(1, 4)), TypeError, "`feature_mask`"),
        (lambda: UnitImportanceAudit(["conv1"], intervention="zero"), TypeError, "`intervention`"),
        (lambda: LayerMapAudit(max_rows=0), ValueError, "`max_rows`"),
        (lambda: CounterfactualAudit(bounds=(1, 0)), ValueError, "low <= high"),
        (lambda: InputEffectAudit(output=3.5), ValueError, "`output`"),
        (lambda: BackdoorAudit(reverse_options={"bogus": 1}, steps=2), ValueError, "bogus"),  # now at construction
    ],
)
def test_bad_settings_fail_at_construction(factory, error, match):
    with pytest.raises(error, match=match):
        factory()


@pytest.mark.parametrize(
    ("audit", "match"),
    [
        (InputEffectAudit(patch_size=4, target=50, ace_values=None), r"`target` to be in \[0, 3\]"),
        (UnitImportanceAudit(["model.conv_9"]), "Unknown module name 'model.conv_9'"),
        (InputEffectAudit(output="scores", ace_values=None), "`output='scores'`"),
        (InputEffectAudit(feature_mask=torch.zeros(1, 3, dtype=torch.long)), "`feature_mask`"),
    ],
)
def test_misconfigurations_found_by_the_dry_run_raise_before_the_first_step(tmp_path, audit, match):
    cb = CausalAuditCallback([audit], report_dir=tmp_path)
    t = quick_trainer(callbacks=[cb], max_epochs=3)
    with pytest.raises(MisconfigurationException, match=match):
        t.fit(small_module(), *synthetic_loaders())
    assert t.global_step == 0 and cb.audited_epochs == []


# ------------------------------------------------------------------------ report directories
def test_a_file_as_report_dir_raises_at_setup(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], report_dir=blocker / "reports")
    t = quick_trainer(callbacks=[cb], max_epochs=1)
    with pytest.raises(MisconfigurationException, match="`report_dir`"):
        t.fit(small_module(), *synthetic_loaders())
    assert t.global_step == 0


def test_a_file_as_report_dir_warns_and_trains_with_on_error_warn(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], report_dir=blocker, on_error="warn")
    t = quick_trainer(callbacks=[cb], max_epochs=1)
    with pytest.warns(UserWarning, match="`report_dir`"):
        t.fit(small_module(), *synthetic_loaders())
    assert t.current_epoch == 1 and cb.audited_epochs == [0]  # audits logged; no JSON report


def _full_disk(monkeypatch):
    real_open = open

    def fail_on_tmp(path, mode="r", *args, **kwargs):
        if str(path).endswith(".tmp") and "w" in mode:
            fh = real_open(path, mode, *args, **kwargs)
            fh.close()
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(json_report, "open", fail_on_tmp, raising=False)


def test_a_full_disk_with_on_error_warn_records_the_epoch_as_failed(tmp_path, monkeypatch):
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], report_dir=tmp_path, on_error="warn")
    t = quick_trainer(callbacks=[cb], max_epochs=2)
    monkeypatch.setattr(cb, "_check_report_dir", lambda trainer: None)  # the disk fills up after set-up
    _full_disk(monkeypatch)
    with pytest.warns(UserWarning, match="could not be written to `report_dir`"):
        t.fit(small_module(), *synthetic_loaders())
    assert t.current_epoch == 2 and cb.audited_epochs == [] and cb.failed_epochs == [0, 1]
    assert os.listdir(tmp_path) == []  # no report, no temporary file


def test_a_full_disk_with_on_error_raise_names_report_dir(tmp_path, monkeypatch):
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], report_dir=tmp_path)
    monkeypatch.setattr(cb, "_check_report_dir", lambda trainer: None)
    _full_disk(monkeypatch)
    with pytest.raises(RuntimeError, match="`report_dir`.*No space left"):
        quick_trainer(callbacks=[cb], max_epochs=1).fit(small_module(), *synthetic_loaders())
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------ compile, reuse
class Plain(pl.LightningModule):
    """Lightning compiles ``training_step`` too: no ``self.log`` inside (dynamo cannot trace it)."""

    def __init__(self) -> None:
        super().__init__()
        self.model = small_module(batch_norm=False, dropout=0.0).model

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def test_fit_of_a_compiled_module_audits_the_eager_model(tmp_path):
    torch.manual_seed(0)
    module = Plain()
    cb = CausalAuditCallback([UnitImportanceAudit(["model.conv1"])], probe_size=8, report_dir=tmp_path)
    quick_trainer(callbacks=[cb], max_epochs=1, deterministic=False).fit(torch.compile(module, backend="eager"), synthetic_loaders()[0])
    assert cb.audited_epochs == [0]
    expected = UnitImportanceAudit(["model.conv1"]).run(module, cb.probe)
    got = cb.last_results["unit_importance"].vectors["importance/model.conv1"]
    torch.testing.assert_close(got, expected.vectors["importance/model.conv1"])
    assert float(got.sum()) > 0  # the interventions took effect (a silent no-op gives all zeros)


def test_a_second_fit_starts_fresh(tmp_path):
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], probe_size=8, report_dir=tmp_path / "r")
    quick_trainer(callbacks=[cb], max_epochs=2).fit(small_module(), *synthetic_loaders())
    first_probe = cb.probe.first.clone()
    x, y = digits_like(96, seed=5)
    other = DataLoader(TensorDataset(x, y), batch_size=16)
    quick_trainer(callbacks=[cb], max_epochs=2).fit(small_module(), other, other)
    assert cb.audited_epochs == [0, 1]  # not skipped as "already audited"
    assert torch.equal(cb.probe.first, x[:8]) and not torch.equal(cb.probe.first, first_probe)


# ------------------------------------------------------------------------ models with several heads
class TwoHeads(pl.LightningModule):
    """Returns ``{"cls": logits [N, 4], "reg": [N, 2]}``: no ``logits`` key, so every audit names its head."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU())
        self.cls, self.reg = nn.Linear(16, 4), nn.Linear(16, 2)

    def forward(self, x):
        h = self.body(x)
        return {"cls": self.cls(h), "reg": self.reg(h)}

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0])["cls"], batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_each_audit_explains_its_own_output_of_a_model_with_several_heads(tmp_path):
    """The set-up check called the model with the default output and refused every dict or tuple
    of heads, although each audit was given `output=`."""
    torch.manual_seed(0)
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None, output="cls"),
                              UnitImportanceAudit(["body.2"], output="reg", name="reg_units")], probe_size=8)
    train, _ = synthetic_loaders(32)
    quick_trainer(callbacks=[cb], max_epochs=1).fit(TwoHeads(), train)
    assert cb.audited_epochs == [0]
    assert cb.last_results["input_effect"].maps["effect"].shape[0] == 8
    assert cb.last_results["reg_units"].vectors["importance/body.2"].shape == (16,)
    with pytest.raises(MisconfigurationException, match="'input_effect'.*`output=`"):
        quick_trainer(callbacks=[CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8)], max_epochs=1).fit(TwoHeads(), train)


class PerPixelLabels(Dataset):
    """8x8 images whose label is a mask [8, 8] (segmentation) or a float (regression)."""

    def __init__(self, kind: str) -> None:
        self.x, _ = digits_like(24)
        self.kind = kind

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        y = (self.x[i, 0] > 0.5).long() if self.kind == "mask" else self.x[i].mean() * 3
        return self.x[i], y


@pytest.mark.parametrize("kind", ["mask", "float"])
def test_maps_are_drawn_for_labels_that_are_not_one_class_per_sample(tmp_path, kind):
    """A segmentation mask per sample crashed the per-sample figure titles after the first epoch
    (`int(labels[i])`); float labels were cut to integers ('label 2' for 2.7)."""
    from lightning.pytorch.loggers import TensorBoardLogger

    from lightning_causal.models import LightningClassifier
    from lightning_causal.reporting.figure_kinds import sample_title

    class Mean(nn.Module):
        def forward(self, x):
            return x.mean((2, 3))

    class Module(LightningClassifier):
        def training_step(self, batch, batch_idx):
            return self(batch[0]).sum() * 0 + sum(p.sum() for p in self.parameters()) * 0

    torch.manual_seed(0)
    module = Module(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), Mean()))
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], probe_size=4)
    trainer = quick_trainer(callbacks=[cb], max_epochs=1, logger=TensorBoardLogger(tmp_path), enable_checkpointing=False)
    trainer.fit(module, DataLoader(PerPixelLabels(kind), batch_size=8))
    assert cb.audited_epochs == [0]
    result = cb.last_results["input_effect"]
    from lightning_causal.reporting.figure_kinds import MapData

    title = sample_title(MapData(cb.probe.inputs, result.maps, "ie", result.meta, cb.probe.labels), 0)
    expected = f"(label {float(cb.probe.labels[0]):.3g})" if kind == "float" else "ie, sample 0:"
    assert expected in title
