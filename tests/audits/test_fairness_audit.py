"""FairnessAudit: the reported numbers equal the core functions, no trace, clear configuration errors."""

import json

import pytest
import torch

from lightning_causal.audits.base import Probe
from lightning_causal.audits.fairness import FairnessAudit
from lightning_causal.causal.scm.attribute_flip import AttributeFlip
from lightning_causal.causal.scm.fairness import (
    carrier_unit_effects,
    counterfactual_fairness_gap,
    group_rates,
)
from lightning_causal.datasets.synthetic_fairness import make_synthetic_fairness
from lightning_causal.models import MLP


@pytest.fixture(scope="module")
def data():
    return make_synthetic_fairness(300, seed=2)


def _model():
    torch.manual_seed(0)
    return MLP(4, (8, 6))


def test_audit_reports_the_core_metrics(data):
    model = _model()
    probe = Probe(data.x, data.y)
    r = FairnessAudit(data.scm, "a", layers=["net.1"], top_k=3).run(model, probe)
    gap = counterfactual_fairness_gap(model, data.x, data.scm.flip("a"))
    assert r.scalars["cf_gap"] == pytest.approx(gap["mean_abs"])
    assert r.scalars["cf_gap_max"] == pytest.approx(gap["max_abs"])
    assert r.scalars["cf_flip_rate"] == pytest.approx(gap["flip_rate"])
    torch.testing.assert_close(r.vectors["cf_delta"], gap["delta"])
    with torch.no_grad():
        preds = model(data.x).argmax(1)
    rates = group_rates(preds, data.x[:, 0], data.y)
    assert [row["name"] for row in r.tables["groups"]] == ["a=0", "a=1"]  # the scalars' tags name the groups so
    assert r.scalars["positive_rate/a_eq_0"] == pytest.approx(float(rates["positive_rate"][0]))
    assert r.scalars["tpr/a_eq_1"] == pytest.approx(float(rates["tpr"][1]))
    assert r.scalars["demographic_parity_difference"] == pytest.approx(float((rates["positive_rate"][0] - rates["positive_rate"][1]).abs()))
    eo = max(float((rates["tpr"][0] - rates["tpr"][1]).abs()), float((rates["fpr"][0] - rates["fpr"][1]).abs()))
    assert r.scalars["equalized_odds_difference"] == pytest.approx(eo)
    carried = carrier_unit_effects(model, data.x, data.scm, "net.1", sensitive="a").abs().mean(0)
    torch.testing.assert_close(r.vectors["carriers/net.1"], carried)
    top = r.tables["top_carriers/net.1"]
    assert [row["unit"] for row in top] == carried.topk(3).indices.tolist()
    assert [row["group"] for row in r.tables["groups"]] == [0, 1]
    json.dumps(r.to_dict())  # plain data
    assert not r.non_finite()


def test_audit_without_labels_and_with_flip(data):
    r = FairnessAudit(AttributeFlip(0)).run(_model(), Probe(data.x))
    assert "equalized_odds_difference" not in r.scalars and "tpr/group_0" not in r.scalars
    assert "demographic_parity_difference" in r.scalars and not any(k.startswith("carriers/") for k in r.vectors)


def test_audit_leaves_no_trace(data):
    model = _model().train()
    before = [p.detach().clone() for p in model.parameters()]
    state = torch.get_rng_state()
    FairnessAudit(data.scm, "a", layers=["net.1", "net.3"]).run(model, Probe(data.x, data.y))
    assert model.training and all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(not m._forward_hooks for m in model.modules())
    assert torch.equal(torch.get_rng_state(), state)


def test_audit_configuration_errors(data):
    with pytest.raises(ValueError, match="one of \\['a', 'm1', 'm2', 'x3'\\], but got 'sex'"):
        FairnessAudit(data.scm, "sex")
    with pytest.raises(ValueError, match="`top_k`"):
        FairnessAudit(data.scm, "a", top_k=0)
    with pytest.raises(ValueError, match="`layers`"):
        FairnessAudit(data.scm, "a", layers=[""])
    audit = FairnessAudit(data.scm, "a", layers=["net.9"])
    with pytest.raises(ValueError, match="Unknown module name 'net.9'"):
        audit.validate(_model(), Probe(data.x))
    bad = data.x.clone()
    bad[0, 0] = 0.5
    with pytest.raises(ValueError, match="only the values \\(0.0, 1.0\\)"):
        FairnessAudit(data.scm, "a").validate(_model(), Probe(bad))
    with pytest.raises(ValueError, match="tabular probe"):
        FairnessAudit(AttributeFlip(5), 5).run(_model(), Probe(data.x))


def test_audit_runs_in_the_callback(tmp_path, data):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_causal.callbacks.audit import CausalAuditCallback
    from lightning_causal.models import LightningClassifier

    torch.manual_seed(0)
    module = LightningClassifier(MLP(4, (8,)), lr=0.01)
    cb = CausalAuditCallback([FairnessAudit(data.scm, "a", layers=["model.net.1"])], probe=(data.x[:64], data.y[:64]))
    loader = DataLoader(TensorDataset(data.x, data.y), batch_size=100)
    trainer = pl.Trainer(default_root_dir=str(tmp_path), max_epochs=1, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[cb])
    trainer.fit(module, loader)
    assert cb.audited_epochs == [0]
    metrics = trainer.callback_metrics
    assert {"causal/fairness/cf_gap", "causal/fairness/positive_rate/a_eq_1",
            "causal/fairness/model.net.1/top1_carrier_share"} <= set(metrics)


class _Recoded(torch.nn.Module):
    """The same classifier whatever the coding of its sensitive column 1: the column is mapped back to 0/1."""

    def __init__(self, values):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 2.0]]))
            self.lin.bias.copy_(torch.tensor([0.0, -0.5]))
        self.values = values

    def forward(self, x):
        s = (x[:, 1] - self.values[0]) / (self.values[1] - self.values[0])
        return self.lin(torch.stack([x[:, 0], s], 1))


@pytest.mark.parametrize("values", [(-1.0, 1.0), (2.0, 0.0), (-1.0075222, 0.98757124)], ids=["pm1", "reversed", "standardised"])
def test_group_metrics_do_not_depend_on_how_the_attribute_is_coded(values):
    # coded -1/+1 the -1 group was dropped (read as "no group"), NaN parity; standardised it was refused
    g = torch.Generator().manual_seed(0)
    s, x0 = torch.randint(0, 2, (200,), generator=g).float(), torch.randn(200, generator=g)
    y = ((x0 + 1.5 * s) > 0.7).long()
    base = FairnessAudit(AttributeFlip(1)).run(_Recoded((0.0, 1.0)), Probe(torch.stack([x0, s], 1), y))
    coded = torch.where(s == 0, torch.tensor(values[0]), torch.tensor(values[1]))
    got = FairnessAudit(AttributeFlip(1, values=values)).run(_Recoded(values), Probe(torch.stack([x0, coded], 1), y))
    assert base.scalars.keys() == got.scalars.keys() and "positive_rate/group_0" in got.scalars
    for key, value in base.scalars.items():
        assert got.scalars[key] == pytest.approx(value, abs=1e-6), key
    pred = _Recoded((0.0, 1.0))(torch.stack([x0, s], 1)).argmax(1).float()
    assert got.scalars["demographic_parity_difference"] == pytest.approx(abs(float(pred[s == 1].mean() - pred[s == 0].mean())))
    assert [(r["group"], r["value"]) for r in got.tables["groups"]] == [(0, values[0]), (1, values[1])]


def test_a_callable_on_a_continuous_sensitive_column_fails_in_validate_naming_sensitive(data):
    """It failed in `run`, after the gap was computed, naming `groups`, a parameter nobody passed."""
    x = data.x.clone()
    x[:, 0] = (x[:, 0] - x[:, 0].mean()) / x[:, 0].std() + 0.1 * torch.linspace(-1, 1, x.shape[0])
    audit = FairnessAudit(lambda rows: torch.cat([-rows[:, :1], rows[:, 1:]], 1), sensitive=0)
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"`sensitive=0`.*integral group ids.*`sensitive=None`"):
        audit.validate(MLP(4, (8,)), Probe(x, data.y))
    FairnessAudit(lambda rows: torch.cat([-rows[:, :1], rows[:, 1:]], 1)).validate(MLP(4, (8,)), Probe(x, data.y))


def test_flipping_one_column_of_a_one_hot_block_is_named_in_a_warning(data):
    """`pd.get_dummies` gives sex_Female / sex_Male: flipping sex_Male alone made rows summing to 0
    or 2, and the gap was reported without a word."""
    import warnings

    from lightning_causal.causal.scm.attribute_flip import one_hot_block

    male = data.x[:, 0]
    x = torch.cat([1 - male[:, None], data.x], 1)  # column 0: the complement of column 1
    torch.manual_seed(0)
    model = MLP(5, (8,))
    assert one_hot_block(x, 1) == [0] and one_hot_block(x, 2) == []
    with pytest.warns(UserWarning, match=r"flipped column 1 is one-hot encoded with columns \[0\]"):
        FairnessAudit(AttributeFlip(1)).run(model, Probe(x, data.y))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        FairnessAudit(AttributeFlip(0)).run(MLP(4, (8,)), Probe(data.x, data.y))
