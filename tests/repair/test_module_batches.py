"""CausalRepairModule on other batches and models: unpack_batch, model outputs, wrap() with the
user's layer names, skipped batches, dict losses and non-finite values."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, UnitImportanceAudit
from lightning_causal.models import MLP, LightningClassifier
from lightning_causal.repair import CausalRepairModule, RepairTerm
from tests.helpers.lightning import reports


class _Square(RepairTerm):
    """Penalty = mean squared selected output; records the forward arguments it was given."""

    def __init__(self, weight=1.0, name="square", value=None, **kw):
        super().__init__(weight, name, **kw)
        self.value, self.seen_args = value, []

    def loss(self, model, x, y, additional_forward_args=None):
        self.seen_args.append(additional_forward_args)
        out = self.outputs(model, x, additional_forward_args).pow(2).mean()
        return out if self.value is None else out * 0 + self.value


class _DictModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x, scale=None):
        return {"logits": self.lin(x) * (1.0 if scale is None else scale.view(-1, 1))}


def _data(n=32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] > 0).long(), torch.rand(n, generator=g) + 0.5


def _trainer(tmp_path, **kw):
    return pl.Trainer(default_root_dir=str(tmp_path), max_epochs=1, accelerator="cpu", logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      log_every_n_steps=1, **kw)


def test_dict_batches_with_forward_arguments_reach_the_task_and_the_terms():
    x, y, s = _data(8)
    term = _Square(weight=0.5)
    module = CausalRepairModule(_DictModel(), [term])
    total, logs = module.objective({"x": x, "y": y})  # no forward arguments: the mapping has none
    with torch.no_grad():
        out = module.model(x)["logits"]
    torch.testing.assert_close(total, F.cross_entropy(out, y) + 0.5 * out.pow(2).mean())
    unpack = lambda batch: (batch[0], batch[1], {"scale": batch[2]})  # noqa: E731
    module = CausalRepairModule(_DictModel(), [term], unpack_batch=unpack)
    total, _ = module.objective((x, y, s))
    with torch.no_grad():
        out = module.model(x, scale=s)["logits"]
    torch.testing.assert_close(total, F.cross_entropy(out, y) + 0.5 * out.pow(2).mean())
    assert torch.equal(term.seen_args[-1]["scale"], s)


def test_three_tensor_batches_need_unpack_batch():
    x, y, s = _data(8)
    module = CausalRepairModule(_DictModel(), [])
    with pytest.raises(MisconfigurationException, match="unpack_batch"):
        module.objective((x, y, s))


class _TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 2), nn.Linear(4, 2)

    def forward(self, a, b):
        return self.a(a) + self.b(b)


def test_several_inputs_are_refused_before_the_first_step_when_terms_act(tmp_path):
    x, y, _ = _data(16)
    pairs = [((x[i], -x[i]), y[i]) for i in range(16)]  # collated to [[a, b], y]
    module = CausalRepairModule(_TwoInputs(), [_Square()])
    t = _trainer(tmp_path)
    with pytest.raises(MisconfigurationException, match=r"terms \(square\) act on one input tensor.*2 inputs"):
        t.fit(module, DataLoader(pairs, batch_size=8))
    assert t.global_step == 0


def test_output_selects_the_task_tensor():
    class Tuple(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 2)

        def forward(self, x):
            return x.sum(), self.lin(x)

    x, y, _ = _data(8)
    module = CausalRepairModule(Tuple(), [], output=1)
    total, _ = module.objective((x, y))
    torch.testing.assert_close(total, F.cross_entropy(module.model(x)[1], y))
    with pytest.raises(TypeError, match="`output=`"):
        CausalRepairModule(Tuple(), []).objective((x, y))


@pytest.mark.parametrize("weight", [math.nan, math.inf, -1.0])
def test_non_finite_or_negative_weights_are_refused(weight):
    with pytest.raises(ValueError, match="`weight`"):
        _Square(weight=weight)
    term = _Square(weight=lambda epoch: weight)
    with pytest.raises(ValueError, match="weight of term `square`"):
        term.weight_at(0)


def test_a_non_finite_term_raises_naming_it():
    x, y, _ = _data(8)
    module = CausalRepairModule(_DictModel(), [_Square(name="finite"), _Square(name="broken", value=math.nan)])
    with pytest.raises(FloatingPointError, match=r"\['broken'\]"):
        module.objective((x, y))


def test_a_non_finite_task_loss_raises_naming_it():
    x, y, _ = _data(8)
    module = CausalRepairModule(_DictModel(), [_Square()])
    with pytest.raises(FloatingPointError, match="task_loss"):
        module.objective((x * math.inf, y))


class _Skipping(LightningClassifier):
    """Skips odd batches (``None``) and returns a dict on even ones."""

    def training_step(self, batch, batch_idx):
        if batch_idx % 2:
            return None
        return {"loss": F.cross_entropy(self(batch[0]), batch[1]), "extra": 1}


def test_wrap_passes_none_through_and_accepts_a_dict_loss(tmp_path):
    torch.manual_seed(0)
    x, y, _ = _data(64)
    inner = _Skipping(MLP(4, (8,)), lr=0.05, optimizer="sgd")
    term = _Square(weight=0.1)
    wrapped = CausalRepairModule.wrap(inner, [term])
    assert wrapped.objective((x[:8], y[:8]), batch_idx=1) is None and term.seen_args == []
    _trainer(tmp_path).fit(wrapped, DataLoader(TensorDataset(x, y), batch_size=16))
    assert len(term.seen_args) == 2  # 4 batches: the 2 odd ones skipped before any term ran


def _audit_tags(tmp_path, module, name):
    cb = CausalAuditCallback([UnitImportanceAudit(["model.net.1"])], probe_size=8, report_dir=tmp_path / name)
    x, y, _ = _data(32)
    _trainer(tmp_path).fit(module, DataLoader(TensorDataset(x, y), batch_size=16))
    return cb, sorted(reports(tmp_path / name)["epoch_0000.json"]["audits"]["unit_importance"]["scalars"])


def test_audits_of_a_wrapped_module_use_its_own_layer_names_and_tags(tmp_path):
    torch.manual_seed(0)
    inner = LightningClassifier(MLP(4, (8,)), lr=0.05, optimizer="sgd")
    cb = CausalAuditCallback([UnitImportanceAudit(["model.net.1"])], probe_size=8, report_dir=tmp_path / "plain")
    x, y, _ = _data(32)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    _trainer(tmp_path, callbacks=[cb]).fit(inner, loader)
    before = sorted(reports(tmp_path / "plain")["epoch_0000.json"]["audits"]["unit_importance"]["scalars"])
    cb = CausalAuditCallback([UnitImportanceAudit(["model.net.1"])], probe_size=8, report_dir=tmp_path / "wrapped")
    wrapped = CausalRepairModule.wrap(inner, [_Square(weight=0.1)])
    _trainer(tmp_path, callbacks=[cb]).fit(wrapped, loader)
    after = sorted(reports(tmp_path / "wrapped")["epoch_0000.json"]["audits"]["unit_importance"]["scalars"])
    assert before == after and "model.net.1/top1_importance" in after


class _Weighted(LightningClassifier):
    """Batches ``(x, y, sample_weight)``: the task loss weights each sample."""

    def training_step(self, batch, batch_idx):
        x, y, w = batch
        return (F.cross_entropy(self(x), y, reduction="none") * w).mean()


def test_wrap_passes_its_options_to_the_repair_module(tmp_path):
    torch.manual_seed(0)
    x, y, w = _data(32)
    unpack = lambda batch: (batch[0], batch[1], None)  # noqa: E731
    term = _Square(weight=0.1)
    wrapped = CausalRepairModule.wrap(_Weighted(MLP(4, (8,)), lr=0.05, optimizer="sgd"), [term], unpack_batch=unpack)
    assert wrapped.unpack_batch is unpack
    _trainer(tmp_path).fit(wrapped, DataLoader(TensorDataset(x, y, w), batch_size=16))
    assert term.seen_args == [None, None]  # both batches reached the term through `unpack`


def test_the_task_loss_and_predict_step_call_a_model_of_several_inputs_with_each_input():
    """`model_outputs` passed the tuple of inputs as one argument (`predict_step` unpacked it)."""

    class TwoInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(4, 2)

        def forward(self, x1, x2):
            return self.a(x1) + self.b(x2)

    torch.manual_seed(0)
    model = TwoInputs()
    x1, x2, y = torch.randn(5, 3), torch.randn(5, 4), torch.randint(0, 2, (5,))
    module = CausalRepairModule(model, [])
    want = nn.functional.cross_entropy(model(x1, x2), y)
    torch.testing.assert_close(module.task_step(((x1, x2), y), 0), want)
    torch.testing.assert_close(module.predict_step(((x1, x2), y), 0), model(x1, x2))


def test_validation_of_a_model_of_several_inputs_from_a_dict_batch(tmp_path):
    """`validation_step` read `x.shape[0]` of the tuple of inputs (AttributeError: 'tuple' object
    has no attribute 'shape') in the sanity check of any fit with ((cat, num), y) batches."""

    class CatNum(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.lin = nn.Embedding(3, 2), nn.Linear(2 + 4, 2)

        def forward(self, cat, num):
            return self.lin(torch.cat([self.emb(cat[:, 0]), num], 1))

    torch.manual_seed(0)
    model = CatNum()
    cat, num, y = torch.randint(0, 3, (6, 1)), torch.randn(6, 4), torch.tensor([0, 1, 1, 0, 1, 0])
    data = [{"cat": cat[i], "num": num[i], "y": y[i]} for i in range(6)]
    module = CausalRepairModule(model, [], unpack_batch=lambda b: ((b["cat"], b["num"]), b["y"], None))
    metrics = _trainer(tmp_path).validate(module, DataLoader(data, batch_size=6), verbose=False)[0]
    out = model(cat, num)
    assert metrics["val_loss"] == pytest.approx(float(F.cross_entropy(out, y)), abs=1e-6)
    assert metrics["val_acc"] == pytest.approx(float((out.argmax(1) == y).float().mean()))
