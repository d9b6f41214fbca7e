"""An audit of one's own (a subclass of the public ``Audit``) run by ``CausalAuditCallback`` beside the built-in
ones: what it returns is checked at the dry run, before training, and the hooks it forgets are removed."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits import Audit, AuditResult
from lightning_causal.callbacks import CausalAuditCallback


class _Linear(pl.LightningModule):
    """``f(x) = W x`` with a hand-set ``W``; trained with lr 0, so every epoch has the same weights."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]))

    def forward(self, x):
        return self.fc(x)

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


class WeightNorm(Audit):
    """|W[row]| per input column, times ``scale``: hand-computable."""

    def __init__(self, row: int, scale: float = 1.0, name: str | None = None, result_name: str | None = None,
                 vector: object = None) -> None:
        super().__init__(name)
        self.row, self.scale, self.result_name, self.vector = row, scale, result_name, vector

    def run(self, model, probe, *, max_batch_size=None):
        v = model.fc.weight[self.row].detach().abs() * self.scale
        vectors = {"w": v if self.vector is None else self.vector}
        return AuditResult(self.result_name or self.name, scalars={"total": float(v.sum())}, vectors=vectors)


def _fit(tmp_path, audits, **options):
    x = torch.arange(24.0).reshape(8, 3) / 10
    loader = DataLoader(TensorDataset(x, torch.tensor([0, 1] * 4)), batch_size=4)
    cb = CausalAuditCallback(audits, probe_size=4, report_dir=tmp_path, **options)
    model = _Linear()
    trainer = pl.Trainer(max_epochs=2, callbacks=[cb], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(model, loader)
    return cb, model


def test_two_instances_of_one_class_log_apart(tmp_path):
    cb, _ = _fit(tmp_path, [WeightNorm(0, name="row0"), WeightNorm(1, scale=2.0, name="row1")])
    assert cb.last_scalars["causal/row0/total"] == pytest.approx(3.5)  # |1| + |-2| + |0.5|
    assert cb.last_scalars["causal/row1/total"] == pytest.approx(8.0)  # 2 (|0| + |3| + |-1|)
    assert cb.last_scalars["causal/row1/drift/w/spearman"] == pytest.approx(1.0)  # same weights at both epochs
    report = json.loads((tmp_path / "epoch_0001.json").read_text())
    assert report["audits"]["row1"]["vectors"]["w"] == [0.0, 6.0, 2.0]


def test_a_result_named_otherwise_than_its_audit_is_refused_at_set_up(tmp_path):
    # both results named "weights": before, audit 'row0's scalars and report entry were silently replaced by 'row1's
    audits = [WeightNorm(0, name="row0", result_name="weights"), WeightNorm(1, name="row1", result_name="weights")]
    with pytest.raises(MisconfigurationException, match=r"WeightNorm.run of audit 'row0' to return an AuditResult named 'row0'"):
        _fit(tmp_path, audits)


class _Dict(WeightNorm):
    def run(self, model, probe, *, max_batch_size=None):
        return {"total": 1.0}


def test_a_run_that_returns_no_audit_result_is_refused_at_set_up(tmp_path):
    # before: the dry run let it pass and the first audit epoch failed with "'dict' object has no attribute 'meta'"
    with pytest.raises(MisconfigurationException, match=r"to return an AuditResult .* but got dict"):
        _fit(tmp_path, [_Dict(0)])


def test_a_vector_that_is_no_tensor_is_refused_at_set_up(tmp_path):
    # before: "'list' object has no attribute 'dim'" after the first epoch
    with pytest.raises(MisconfigurationException, match=r"`AuditResult.vectors\['w'\]` .* to be a tensor but got list"):
        _fit(tmp_path, [WeightNorm(0, vector=[1.0, 2.0])])


class _LeavesHook(WeightNorm):
    """Registers a forward hook that doubles the output and fails before removing it (at the epochs' audits)."""

    def dry_run(self, model, probe):
        return None

    def run(self, model, probe, *, max_batch_size=None):
        model.fc.register_forward_hook(lambda m, i, o: 2 * o)
        raise RuntimeError("lost my handle")


def test_hooks_a_failed_audit_leaves_are_removed_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match=r"Audit 'leaves_hook' left 1 forward hook on 'fc' after its run; removed"):
        cb, model = _fit(tmp_path, [_LeavesHook(0)], on_error="warn")
    assert cb.audited_epochs == [0, 1]
    assert not model.fc._forward_hooks  # before: two hooks stayed, each doubling the logits of every later step
    x = torch.tensor([[1.0, 0.0, 0.0]])
    assert torch.equal(model(x), torch.tensor([[1.0, 0.0]]))


class _Shaped(WeightNorm):
    """A result with one field of a form the reporting layer cannot take."""

    def __init__(self, **fields) -> None:
        super().__init__(0)
        self.fields = fields

    def run(self, model, probe, *, max_batch_size=None):
        return AuditResult(self.name, **self.fields)


@pytest.mark.parametrize(("fields", "message"), [
    ({"tables": {"t": [[1, 2]]}}, r"`AuditResult.tables\['t'\]` .* a list of rows, each a dict"),
    ({"images": {"i": torch.zeros(8, 8)}}, r"`AuditResult.images\['i'\]` .* \[C, H, W\] but got a tensor of shape \[8, 8\]"),
])
def test_tables_and_images_the_renderer_cannot_draw_are_refused_at_set_up(tmp_path, fields, message):
    # before: the fit stopped after the first epoch inside the drawing ("'list' object has no attribute 'items'",
    # matplotlib's "Invalid shape (8,) for image data"), even with on_error="warn"
    with pytest.raises(MisconfigurationException, match=message):
        _fit(tmp_path, [_Shaped(**fields)], on_error="warn")


def test_a_graph_of_another_form_is_kept_in_the_report_and_not_drawn(tmp_path):
    from lightning_causal.reporting.tensorboard import TensorBoardRenderer

    result = AuditResult("mine", graphs={"g": {"nodes": ["a", "b"], "edges": [["a", "b"]]}})
    assert TensorBoardRenderer().figures([result]) == {}  # before: TypeError inside graph_figure
    _fit(tmp_path, [_Shaped(graphs={"g": {"edges": [["a", "b", 0.5]]}})])
    report = json.loads((tmp_path / "epoch_0001.json").read_text())
    assert report["audits"]["shaped"]["graphs"]["g"] == {"edges": [["a", "b", 0.5]]}


class _Stateful(WeightNorm):
    """Carries the last weights from one audit to the next."""

    def __init__(self, as_numpy: bool = False, strict: bool = False) -> None:
        super().__init__(0)
        self.as_numpy, self.strict, self.previous = as_numpy, strict, None

    def run(self, model, probe, *, max_batch_size=None):
        w = model.fc.weight.detach().clone()
        self.previous = w.numpy() if self.as_numpy else w
        return super().run(model, probe)

    def state_dict(self):
        return {"previous": self.previous}

    def load_state_dict(self, state):
        self.previous = state["previous"] if self.strict else state.get("previous")


def test_a_state_a_checkpoint_cannot_give_back_is_refused_at_set_up(tmp_path):
    # before: saved into every checkpoint, and a fit resumed from one failed in torch.load(weights_only=True)
    with pytest.raises(MisconfigurationException, match=r"_Stateful.state_dict\(\) of audit 'stateful' to hold plain values .*numpy"):
        _fit(tmp_path, [_Stateful(as_numpy=True)])
    cb, _ = _fit(tmp_path, [_Stateful()])
    assert torch.equal(cb.audits[0].previous, _Linear().fc.weight.detach())


def test_a_load_state_dict_that_needs_its_keys_is_told_it_resets_each_fit(tmp_path):
    # before: KeyError: 'previous' from setup, naming neither the audit nor the empty dict
    with pytest.raises(MisconfigurationException, match=r"Audit 'stateful': load_state_dict\(\{\}\) raised KeyError\('previous'\); "
                                                        r"the callback calls it with an empty dict at the start of every fit"):
        _fit(tmp_path, [_Stateful(strict=True)])


def test_a_map_not_shaped_like_the_inputs_is_named_in_a_warning():
    from lightning_causal.reporting.tensorboard import TensorBoardRenderer

    result = AuditResult("mine", maps={"per_unit": torch.ones(4, 7), "per_feature": torch.ones(4, 3)})
    # before: 'per_unit' was left out of TensorBoard without a word
    with pytest.warns(UserWarning, match=r"Map 'per_unit' of audit 'mine' is not drawn in TensorBoard: its shape \[4, 7\]"):
        figures = TensorBoardRenderer().figures([result], torch.rand(4, 3))
    assert list(figures) == ["causal/mine/maps/top_features"]  # the map shaped like the inputs is drawn


def test_an_audit_whose_init_skips_audit_init_is_told_to_call_it():
    class NoSuper(Audit):
        def __init__(self, layer):
            self.layer = layer

        def run(self, model, probe, *, max_batch_size=None):
            return AuditResult(self.name)

    # before: AttributeError: 'NoSuper' object has no attribute 'name'
    with pytest.raises(MisconfigurationException, match=r"\['NoSuper'\] have no `name`/`output`: call `super\(\).__init__\(name, output=output\)`"):
        CausalAuditCallback([NoSuper("fc")])
