"""audit_model: a trained model audited once after the fit (newuser22 trial), on the callback's probe rules."""

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import (
    CausalAuditCallback,
    InputEffectAudit,
    UnitImportanceAudit,
    audit_model,
    load_report,
)
from lightning_causal.audits import Probe
from lightning_causal.models import LightningClassifier
from lightning_causal.reporting import scalar_tags
from tests.helpers.recipes import recipe_code, run_code


class NoisyNet(nn.Module):
    """An MLP that keeps dropout on in eval mode (MC dropout): its effects depend on the global generator."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(F.dropout(torch.relu(self.fc1(x)), 0.5, training=True))


def _audits():
    return [InputEffectAudit(feature_names=["a", "b", "c", "d"], ace_values=None), UnitImportanceAudit(["model.fc1"])]


class _Writer:
    def __init__(self):
        self.scalars = {}

    def add_scalar(self, tag, value, step):
        self.scalars[tag] = (value, step)

    def __getattr__(self, name):  # add_figure, add_text, add_histogram, ...: accepted, not kept
        return lambda *args, **kwargs: None


def test_a_checkpoint_audited_after_the_fit_gives_the_numbers_of_the_fits_report(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(48, 4, generator=g), torch.randint(0, 2, (48,), generator=g)
    val = DataLoader(TensorDataset(x[32:], y[32:]), batch_size=4, shuffle=True)  # the probe is read in dataset order
    pl.seed_everything(0)
    callback = CausalAuditCallback(_audits(), probe_size=12, report_dir=tmp_path / "fit")
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[callback])
    trainer.fit(LightningClassifier(NoisyNet(), lr=1e-2), DataLoader(TensorDataset(x[:32], y[:32]), batch_size=8), val)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    fit = load_report(tmp_path / "fit" / "epoch_0000.json")["audits"]

    model = LightningClassifier.load_from_checkpoint(tmp_path / "model.ckpt", model=NoisyNet())
    torch.manual_seed(123)  # whatever the global generator holds: each audit starts from seed 0, as in the fit
    writer = _Writer()
    results = audit_model(model, _audits(), val, probe_size=12, report_dir=tmp_path / "after", writer=writer, epoch=3)
    for result in results:
        assert result.scalars.keys() == fit[result.audit]["scalars"].keys()
        for name, value in result.scalars.items():
            assert value == pytest.approx(fit[result.audit]["scalars"][name], abs=1e-6), (result.audit, name)
        for name, vector in result.vectors.items():
            assert vector.tolist() == pytest.approx(fit[result.audit]["vectors"][name], abs=1e-6)
        assert result.meta["notes"] == fit[result.audit]["meta"]["notes"]  # what the model's own noise means
    # the report and the scalars: the callback's tags, at step = epoch
    after = load_report(tmp_path / "after" / "epoch_0003.json")
    assert after["epoch"] == 3 and after["probe"]["samples"] == 12 and set(after["audits"]) == set(fit)
    assert writer.scalars == {tag: (value, 3) for r in results for tag, value in scalar_tags(r).items()}
    # by hand, without the seed, the same audit explains another draw of the dropout noise
    torch.manual_seed(123)
    by_hand = InputEffectAudit(feature_names=["a", "b", "c", "d"], ace_values=None).run(model, Probe(x[32:44], y[32:44]))
    assert by_hand.vectors["mean_abs_effect"].tolist() != pytest.approx(results[0].vectors["mean_abs_effect"].tolist(), abs=1e-6)


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"probe_size": 0}, "probe_size"), ({"epoch": -1}, "epoch"), ({"writer": object()}, "writer"),
    ({"audits": []}, "audits"), ({"model": "net"}, "model"), ({"data": None}, "data"),
])
def test_wrong_arguments_are_named(kwargs, named):
    args = {"model": nn.Linear(4, 2), "audits": InputEffectAudit(ace_values=None), "data": torch.randn(6, 4), **kwargs}
    with pytest.raises(MisconfigurationException, match=f"`{named}`"):
        audit_model(**args)


def test_the_posthoc_recipe_runs_and_its_drift_is_scipys(monkeypatch, tmp_path):
    """docs/recipes.md 'A checkpoint audited after the fit': two checkpoints audited, side by side in one logdir
    (the same tags in both runs), and the drift of the two effect vectors as SciPy and a hand count give it."""

    from scipy.stats import spearmanr

    code = recipe_code("posthoc", (("max_epochs=4", "max_epochs=1"), ("max_epochs=3", "max_epochs=1"), ("n=1000", "n=400"),
                                   ("data.x[:800], data.y[:800]", "data.x[:300], data.y[:300]"),
                                   ("data.x[800:], data.y[800:]", "data.x[300:], data.y[300:]"),
                                   ("probe_size=128", "probe_size=64")))
    monkeypatch.chdir(tmp_path)
    init = pl.Trainer.__init__
    monkeypatch.setattr(pl.Trainer, "__init__", lambda self, *a, **k: init(
        self, *a, **{"enable_progress_bar": False, "enable_model_summary": False, **k}))
    ns = run_code(code, "posthoc recipe")
    before, after = (ns["before"]["input_effect"].vectors["mean_abs_effect"].double().numpy(),
                     ns["after"]["input_effect"].vectors["mean_abs_effect"].double().numpy())
    assert ns["drift"]["drift/mean_abs_effect/spearman"] == pytest.approx(spearmanr(before, after).statistic)
    top = [set(v.argsort()[-3:].tolist()) for v in (before, after)]  # the callback's k: the top min(5, 4 - 1)
    assert ns["drift"]["drift/mean_abs_effect/topk_jaccard"] == pytest.approx(len(top[0] & top[1]) / len(top[0] | top[1]))
    for name in ("trained", "repaired"):
        report = load_report(tmp_path / "runs" / "compare" / name / "causal_audit" / "epoch_0000.json")
        assert report["probe"]["samples"] == 64 and set(report["audits"]) == {"input_effect", "fairness"}
    tags = [{tag for r in ns["results"][name].values() for tag in scalar_tags(r)} for name in ("trained", "repaired")]
    assert tags[0] == tags[1] and "causal/fairness/cf_gap" in tags[0]


def test_validate_with_the_callback_names_audit_model():
    """trainer.validate audits nothing: its warning names the one call that audits the trained model."""
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[CausalAuditCallback(_audits())])
    with pytest.warns(UserWarning, match=r"audits nothing\. .*lightning_causal\.audit_model\(model, audits"):
        trainer.validate(LightningClassifier(NoisyNet()), DataLoader(TensorDataset(x, y), batch_size=4))


class _Data(pl.LightningDataModule):
    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.stages = x, y, []

    def setup(self, stage):
        self.stages.append(stage)

    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x[:8], self.y[:8]), batch_size=3, shuffle=True)


class _ValData(_Data):
    def val_dataloader(self):
        return DataLoader(TensorDataset(self.x[8:], self.y[8:]), batch_size=3)


@pytest.mark.parametrize(("data_class", "rows", "stage"), [(_ValData, slice(8, 13), "validate"), (_Data, slice(0, 5), "fit")])
def test_a_datamodule_gives_the_probe_the_callback_would_read(data_class, rows, stage):
    """The validation data's first samples; a datamodule without val_dataloader (a fit that validates on nothing:
    the callback probes the training data), the training data's first, in dataset order."""
    x, y = torch.arange(64.0).reshape(16, 4) / 64, torch.arange(16) % 2
    net = nn.Linear(4, 2)
    data = data_class(x, y)
    (got,) = audit_model(net, InputEffectAudit(ace_values=None), data, probe_size=5)
    (want,) = audit_model(net, InputEffectAudit(ace_values=None), x[rows], probe_size=5)
    assert data.stages == [stage]
    assert got.vectors["mean_effect"].tolist() == want.vectors["mean_effect"].tolist()
    # mean effect of do(x_j := 0) on logit 0 of a linear model, averaged over the explained class: w[c, j] * mean x_j
    w, xs = net.weight.detach(), x[rows]
    pred = net(xs).argmax(1)
    expected = (w[pred] * xs).mean(0)
    assert got.vectors["mean_effect"] == pytest.approx(expected, abs=1e-6)


def test_two_checkpoints_audited_in_turn_give_the_second_epochs_report_drift_and_graph_changes_included(tmp_path):
    """previous= gives the callback's drift scalars, and the same audit objects run on both checkpoints give the
    graph's edge changes: epoch 1's report, every scalar of it, from the checkpoints of epochs 0 and 1."""
    import csv

    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from lightning_causal import CausalGraphAudit

    def audits():
        return [InputEffectAudit(ace_values=None), UnitImportanceAudit(["model.0", "model.2"]),
                CausalGraphAudit(["model.0", "model.2"], top_k=4, stability_resamples=0)]

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(48, 4, generator=g), torch.randint(0, 2, (48,), generator=g)
    val = DataLoader(TensorDataset(x[32:], y[32:]), batch_size=8)
    net = lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 2))  # noqa: E731
    pl.seed_everything(0)
    logger = CSVLogger(tmp_path, name="csv")
    trainer = pl.Trainer(max_epochs=2, logger=logger, enable_progress_bar=False, enable_model_summary=False, callbacks=[
        CausalAuditCallback(audits(), probe_size=16, report_dir=tmp_path / "fit"),
        ModelCheckpoint(tmp_path / "ckpt", "{epoch}", save_top_k=-1)])
    trainer.fit(LightningClassifier(net(), lr=5e-2), DataLoader(TensorDataset(x[:32], y[:32]), batch_size=8), val)
    fit = load_report(tmp_path / "fit" / "epoch_0001.json")["audits"]

    same = audits()  # one set of audit objects for both models: the graph compares with its last run
    first = audit_model(LightningClassifier.load_from_checkpoint(tmp_path / "ckpt" / "epoch=0.ckpt", model=net()),
                        same, val, probe_size=16)
    second = audit_model(LightningClassifier.load_from_checkpoint(tmp_path / "ckpt" / "epoch=1.ckpt", model=net()),
                         same, val, probe_size=16, previous=iter(first), epoch=1)
    assert all("drift/" not in name for r in first for name in r.scalars)
    for result in second:
        logged = fit[result.audit]["scalars"]
        assert result.scalars.keys() == logged.keys()
        assert any(name.startswith("drift/") for name in logged) or result.audit == "causal_graph"
        for name, value in result.scalars.items():
            assert value == pytest.approx(logged[name], abs=1e-6), (result.audit, name)
    assert "edge_jaccard_previous" in fit["causal_graph"]["scalars"]
    # the step the fit logged each audit at: the end-of-epoch checkpoint's global_step - 1 (audit_model's step= docs)
    with open(f"{logger.log_dir}/metrics.csv") as f:
        steps = [int(row["step"]) for row in csv.DictReader(f) if row.get("causal/input_effect/mean_abs_effect")]
    assert steps == [torch.load(tmp_path / "ckpt" / f"epoch={e}.ckpt", weights_only=True)["global_step"] - 1 for e in (0, 1)]
    for wrong in (first[0], {"input_effect": first[0]}, [first[0], "x"]):
        with pytest.raises(MisconfigurationException, match="`previous`"):
            audit_model(nn.Linear(4, 2), InputEffectAudit(ace_values=None), x, previous=wrong)


def test_a_probe_the_callback_would_refuse_is_refused():
    """Labels that are no classes of the model (7 for 2 logits, labels numbered from 1): the callback refuses them
    before the first audit; audit_model ran on them (FairnessAudit's group rates read them) without a word."""
    x, y = torch.randn(8, 4), torch.full((8,), 7)
    with pytest.raises(MisconfigurationException, match=r"classes 0 to 1 .* but got \[7\]"):
        audit_model(nn.Linear(4, 2), InputEffectAudit(ace_values=None), (x, y))
    with pytest.raises(MisconfigurationException, match="rejected by the model"):
        audit_model(nn.Linear(4, 2), InputEffectAudit(ace_values=None), torch.randn(8, 3))


def test_audit_model_leaves_the_model_and_the_random_streams_as_it_found_them():
    net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)).train()
    net(torch.randn(16, 4)).sum().backward()  # grads and BatchNorm statistics of a training step
    state = {k: v.clone() for k, v in net.state_dict().items()}
    grads = [p.grad.clone() for p in net.parameters()]
    x = torch.randn(8, 4)
    rng = torch.get_rng_state()
    audit_model(net, [InputEffectAudit(ace_values=None), UnitImportanceAudit(["1"])], x)
    assert all(m.training for m in net.modules())
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, net.parameters()))
    assert torch.equal(rng, torch.get_rng_state())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())


@pytest.mark.parametrize("own_notes", [[], ["gap undefined: one group empty"]])
def test_non_finite_values_are_warned_about_and_noted_as_the_callback_does(own_notes):
    """The warning names the values and, as the callback's, the audit's own notes (what explains them); it points at
    audit_model's caller."""
    from lightning_causal.audits import Audit, AuditResult

    class Diverged(Audit):
        def __init__(self):
            super().__init__("diverged")

        def run(self, model, probe, *, max_batch_size=None):
            return AuditResult(self.name, scalars={"gap": float("nan"), "ok": 1.0}, meta={"notes": list(own_notes)})

    why = "".join(f"; {note}" for note in own_notes)
    with pytest.warns(UserWarning, match=rf"^Audit 'diverged' produced NaN or infinite values in \['gap'\]{why}$") as shown:
        (result,) = audit_model(nn.Linear(4, 2), Diverged(), torch.randn(6, 4))
    assert [w.filename for w in shown if "NaN" in str(w.message)] == [__file__]
    assert result.meta["notes"] == [*own_notes, "non-finite values in ['gap']"]
