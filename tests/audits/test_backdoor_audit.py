"""BackdoorAudit: known trigger, reverse engineering, no trace, JSON, the callback, errors."""

import json

import pytest
import torch
from torch import nn

from lightning_causal.audits.backdoor import BackdoorAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal.backdoor.suspects import anomaly_scale
from lightning_causal.causal.backdoor.triggers import Trigger, attack_success_rate, trigger_effect
from lightning_causal.datasets.poisoning import patch_trigger
from tests.helpers.backdoor import TARGET, train_poisoned_mlp
from tests.helpers.models import all_hook_counts


@pytest.fixture(scope="module")
def poisoned():
    return train_poisoned_mlp()


def test_known_trigger(poisoned):
    model, trig, (_, _, xv, yv) = poisoned
    probe = Probe(xv[:200], yv[:200])
    r = BackdoorAudit(trig, layers=["2"], top_k=3).run(model, probe)
    assert r.scalars["asr"] == attack_success_rate(model, xv[:200], yv[:200], trig) > 0.95
    keep = yv[:200] != TARGET
    assert r.scalars["trigger_ace"] == pytest.approx(float(trigger_effect(model, xv[:200][keep], trig).mean()))
    assert r.scalars["trigger_ace"] > 1.0 and r.scalars["clean_accuracy"] > 0.9
    assert r.images["trigger"].shape == (1, 1, 8, 8) and r.images["triggered_inputs"].shape == (4, 1, 8, 8)
    assert r.vectors["suspect_score/2"].shape == (32,) and len(r.tables["suspects/2"]) == 3
    assert r.tables["suspects/2"][0]["unit"] == int(r.vectors["suspect_score/2"].argmax())
    json.dumps(r.to_dict())


def test_known_trigger_without_labels_uses_predictions(poisoned):
    model, trig, (_, _, xv, _) = poisoned
    r = BackdoorAudit(trig).run(model, Probe(xv[:64]))
    with torch.no_grad():
        pred = model(xv[:64]).argmax(1)
    assert r.scalars["asr"] == attack_success_rate(model, xv[:64], pred, trig) and "clean_accuracy" not in r.scalars


def test_reverse_engineering_flags_the_target_and_leaves_no_trace(poisoned):
    model, _, (_, _, xv, _) = poisoned
    model.train()
    rng = torch.get_rng_state()
    audit = BackdoorAudit(layers=["2"], steps=150, max_samples=128, reverse_options={"batch_size": 32})
    with torch.no_grad():  # the audit enables gradients itself
        r = audit.run(model, Probe(xv))
    assert torch.equal(torch.get_rng_state(), rng) and model.training and all_hook_counts(model) == 0
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    model.eval()
    assert r.tables["flagged_classes"][0]["class"] == TARGET and r.scalars["top_class"] == TARGET
    assert r.scalars[f"anomaly_index/class_{TARGET}"] == r.scalars["max_anomaly_index"] >= 2
    assert r.images["reversed_masks"].shape == (10, 1, 8, 8) and r.images["reversed_patterns"].shape == (10, 1, 8, 8)
    assert r.vectors["anomaly_index"].shape == (10,) and "suspect_score/2" in r.vectors  # suspects of the reversed trigger
    assert set(r.curves["anomaly_index"]) == {"x", "anomaly_index"}  # the ratio rule decides: no index threshold drawn
    assert r.meta["anomaly_scale"] == anomaly_scale(r.vectors["mask_norm"])  # the σ the anomaly-index axis names
    conc = r.vectors["mask_concentration"]
    assert conc.shape == (10,) and r.tables["flagged_classes"][0]["concentration"] == float(conc[TARGET]) > 0.8
    assert torch.allclose(r.vectors["flag_score"], r.vectors["norm_ratio"] / conc)  # the default score: compactness 1
    assert r.tables["flagged_classes"][0]["flag_score"] == pytest.approx(float(r.vectors["flag_score"][TARGET]))
    curve = r.curves["flag_score"]  # what the default rule decides on, with its bound
    assert curve["flag_score"] == r.vectors["flag_score"].tolist() and curve["flagged at or below"] == r.meta["max_ratio"]
    assert curve["flag_score"][TARGET] <= r.meta["max_ratio"] == 0.75


def test_bad_configuration():
    t = Trigger(torch.zeros(1, 4, 4), torch.ones(1, 4, 4), 0)
    with pytest.raises(ValueError, match="`num_classes`"):
        BackdoorAudit(num_classes=1)
    with pytest.raises(TypeError, match="`trigger`"):
        BackdoorAudit(trigger="patch")
    with pytest.raises(ValueError, match="`steps`"):
        BackdoorAudit(steps=0)
    with pytest.raises(ValueError, match="`threshold`"):
        BackdoorAudit(threshold=0)
    with pytest.raises(ValueError, match="`max_ratio`"):
        BackdoorAudit(max_ratio="tight")
    with pytest.raises(ValueError, match="`layers`"):
        BackdoorAudit(layers=[""])
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    with pytest.raises(ValueError, match="broadcast to one input"):
        BackdoorAudit(t).validate(model, Probe(torch.zeros(2, 1, 8, 8)))
    with pytest.raises(ValueError, match="Unknown module name"):
        BackdoorAudit(layers=["fc"]).validate(model, Probe(torch.zeros(2, 1, 8, 8)))
    one_logit = nn.Sequential(nn.Flatten(), nn.Linear(64, 1))
    with pytest.raises(ValueError, match=r"at least 2 outputs but it returns 1.*torch.cat\(\[-z, z\], 1\)"):
        BackdoorAudit(steps=2).run(one_logit, Probe(torch.zeros(4, 1, 8, 8)))


def test_runs_in_the_callback(tmp_path):
    from lightning_causal.callbacks.audit import CausalAuditCallback
    from tests.helpers.lightning import quick_trainer, small_module, synthetic_loaders

    train, val = synthetic_loaders()
    trig = patch_trigger((1, 8, 8), 2, "bottom_right", 1.0, target=0)
    cb = CausalAuditCallback([BackdoorAudit(trig, layers=["model.conv2"])], report_dir=tmp_path)
    quick_trainer(max_epochs=2, callbacks=[cb]).fit(small_module(), train, val)
    assert cb.audited_epochs == [0, 1]
    r = cb.last_results["backdoor"]
    assert 0.0 <= r.scalars["asr"] <= 1.0 and r.vectors["suspect_score/model.conv2"].shape == (8,)
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_curves_draw_the_bound_of_the_rule_in_use_only():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    x = torch.rand(12, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    index_rule = BackdoorAudit(steps=3, threshold=1.5, max_ratio=None).run(model, Probe(x))
    assert index_rule.curves["anomaly_index"]["flagged at or above"] == 1.5 and "flag_score" not in index_rule.curves
    ratio_rule = BackdoorAudit(steps=3, max_ratio=0.5).run(model, Probe(x))
    assert set(ratio_rule.curves["anomaly_index"]) == {"x", "anomaly_index"}
    assert ratio_rule.curves["flag_score"]["flagged at or below"] == 0.5


class _Logits:
    """A Hugging Face-like return value: the logits are an attribute."""

    def __init__(self, logits):
        self.logits = logits


class _ScaledByKeyword(nn.Module):
    """``inner(x) * scale[:, None]`` returned as ``.logits``: a per-sample keyword argument that
    must follow its rows (a negative scale turns a sample's argmax into its argmin)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x, scale):
        return _Logits(self.inner(x) * scale[:, None])


def test_a_model_output_with_logits_and_per_sample_keywords_reach_every_backdoor_forward_pass():
    # BackdoorAudit on a Hugging Face classifier (returns ImageClassifierOutput) failed with
    # "'ImageClassifierOutput' object has no attribute 'shape'"; attack_success_rate/trigger_effect/
    # suspect_units took no `output=`/`additional_forward_args=` at all
    from lightning_causal.causal.backdoor.suspects import suspect_units

    torch.manual_seed(0)
    inner = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    model = _ScaledByKeyword(inner)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(40, 4, generator=g), torch.randint(0, 3, (40,), generator=g)
    scale = torch.tensor([-1.0, 1.0, 2.0, 0.5])[torch.randint(0, 4, (40,), generator=g)]
    trig = Trigger(torch.tensor([0.0, 0.0, 1.0, 1.0]), torch.tensor([0.0, 0.0, 3.0, -3.0]), target=2)
    with torch.no_grad():  # brute force on the plain network
        keep = y != 2
        pred = (inner(trig.apply(x)) * scale[:, None]).argmax(1)
        asr = float((pred[keep] == 2).float().mean())
        ace = (inner(trig.apply(x))[:, 2] - inner(x)[:, 2]) * scale
    args = {"scale": scale}
    assert attack_success_rate(model, x, y, trig, additional_forward_args=args) == pytest.approx(asr)
    assert torch.allclose(trigger_effect(model, x, trig, additional_forward_args=args), ace, atol=1e-6)
    r = BackdoorAudit(trig, max_samples=30).run(model, Probe(x, y, args))  # forward args follow the first 30
    keep30 = keep[:30]
    assert r.scalars["asr"] == pytest.approx(float((pred[:30][keep30] == 2).float().mean()))
    assert r.scalars["trigger_ace"] == pytest.approx(float(ace[:30][keep30].mean()), abs=1e-6)
    ones = {"scale": torch.ones(40)}
    su = suspect_units(model, x, trig, "inner.1", additional_forward_args=ones)
    assert torch.allclose(su.score, suspect_units(inner, x, trig, "1").score, atol=1e-6)
    r = BackdoorAudit(trig, layers=["inner.1"], output=lambda out: out.logits).run(model, Probe(x, y, ones))
    assert torch.allclose(r.vectors["suspect_score/inner.1"], su.score, atol=1e-6)
