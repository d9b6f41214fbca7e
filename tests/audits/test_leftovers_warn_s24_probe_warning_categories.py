"""The audits silenced the core's warnings about what the samples hold by their wording (filters on
"layer_causal_map compares layers by the CKA", "Each of the \\d+ explained classes has one sample", REPEATED_SAMPLES,
"Group\\(s\\) .* take one value over `inputs`", "input_effects: every group of every sample already equals"): a
reworded core message came through the dry run on 2 samples (or, said in the audit's words, a second time). Those
warnings have categories now (ProbeContentsWarning and its subcategories RepeatedSamplesWarning and
ConstantGroupsWarning, exported by lightning_causal.causal) and the audits ignore them by category. Each test
rewords the core's messages (prefixed by "In other words:", their spaces written "_", which no old filter matched) and checks that the dry
run (or the audit that says it itself) stays quiet while the full run still warns."""

from __future__ import annotations

import importlib
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import (
    CausalGraphAudit,
    InputEffectAudit,
    LayerMapAudit,
    Probe,
    SobolAudit,
)
from lightning_causal.causal import (
    ConstantGroupsWarning,
    ConstantOutputWarning,
    GaussianCopula,
    ProbeContentsWarning,
    RepeatedSamplesWarning,
    average_causal_effect,
    graph_stability,
)

REWORDED = "In_other_words:_"


class _RewordedWarnings:
    """The ``warnings`` module as a core module sees it, its ``warn`` rewording every message (``_`` for spaces)."""

    def __getattr__(self, name: str):
        return getattr(warnings, name)

    @staticmethod
    def warn(message, category=UserWarning, stacklevel=1, **kwargs):
        warnings.warn(REWORDED + str(message).replace(" ", "_"), category, stacklevel=stacklevel + 1, **kwargs)


@pytest.fixture
def reworded(monkeypatch):
    for name in ("effects.input_effects", "effects.value_grid", "structure.graph", "structure.layer_map"):
        monkeypatch.setattr(importlib.import_module(f"lightning_causal.causal.{name}"), "warnings", _RewordedWarnings())


def _said(run) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [w for w in caught if str(w.message).startswith(REWORDED)]


def _text(w: warnings.WarningMessage) -> str:
    return str(w.message).replace("_", " ")


def _mlp(dead: int | None = None) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2)).double().eval()
    if dead is not None:  # the ReLU after layer `dead` is off for every sample: the layers after it do not move
        with torch.no_grad():
            model[dead].bias.fill_(-100.0)
    return model


def _x(n: int) -> torch.Tensor:
    return torch.randn(n, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def test_the_categories_are_user_warnings_exported_for_filters():
    assert issubclass(RepeatedSamplesWarning, ProbeContentsWarning) and issubclass(ConstantGroupsWarning, ProbeContentsWarning)
    assert issubclass(ProbeContentsWarning, UserWarning)
    x = _x(6)
    x[:, 2] = 0.5  # a constant column
    with pytest.warns(ConstantGroupsWarning, match=r"Group\(s\) 2 \(= 0\.5\) take one value over `inputs`"):
        average_causal_effect(_mlp(), x, None, "quantiles", target=0, num_values=3)


def test_the_layer_maps_dry_run_stays_quiet_however_the_core_words_it(reworded):
    model, x = _mlp(dead=2), _x(16)
    audit = LayerMapAudit(target=0)
    assert _said(lambda: audit.dry_run(model, Probe(x))) == []
    full = _said(lambda: audit.run(model, Probe(x)))  # the probe's own: layer 4 does not move
    assert [w.category for w in full] == [ProbeContentsWarning, ProbeContentsWarning]
    assert any("No input intervention moves the layers ['4']" in _text(w) for w in full)


def _signed() -> nn.Sequential:
    """Class 0 where feature 0 is positive, class 1 where it is negative."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)).double().eval()
    with torch.no_grad():
        model[2].weight.zero_()
        model[2].bias.zero_()
        model[0].weight[0] = torch.tensor([1.0, 0.0, 0.0, 0.0])
        model[0].bias[0] = 0.0
        model[2].weight[:, 0] = torch.tensor([1.0, -1.0])
    return model


def test_the_causal_graphs_dry_run_stays_quiet_however_the_core_words_it(reworded):
    model, audit = _signed(), CausalGraphAudit(["0"], stability_resamples=0)
    x = _x(8)
    x[:, 0] = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 2.0, -2.0], dtype=torch.float64)
    assert model(x).argmax(1).tolist() == [0, 1] * 4  # the dry run's 2 samples: one of each class
    assert _said(lambda: audit.dry_run(model, Probe(x))) == []
    full = _said(lambda: audit.run(model, Probe(x[:2])))
    assert [w.category for w in full] == [ProbeContentsWarning]
    assert "explained classes has one sample" in _text(full[0])
    x[1] = x[0]  # the dry run's 2 samples equal: repeated, of one class
    assert _said(lambda: audit.dry_run(model, Probe(x))) == []
    full = _said(lambda: audit.run(model, Probe(torch.cat([x[:2], x[:2] + 1.0]))))
    assert [w.category for w in full] == [RepeatedSamplesWarning]


def test_the_dry_run_of_two_baseline_samples_stays_quiet_however_the_core_words_it(reworded):
    x = torch.zeros(6, 4, dtype=torch.float64)
    x[3:, 1] = 1.0  # the first two samples equal the baseline 0, the probe's others do not
    audit = InputEffectAudit(ace_values=None)
    assert _said(lambda: audit.dry_run(_mlp(), Probe(x))) == []
    full = _said(lambda: audit.run(_mlp(), Probe(torch.zeros(6, 4, dtype=torch.float64))))
    assert [w.category for w in full] == [ProbeContentsWarning]
    assert "already equals `baseline`" in _text(full[0])


def test_the_ace_curve_of_a_constant_group_stays_quiet_however_the_core_words_it(reworded):
    x = _x(8)
    x[:, 2] = 0.5  # a constant feature: range 0, shown as such
    assert _said(lambda: InputEffectAudit(ace_values=3).run(_mlp(), Probe(x))) == []
    said = _said(lambda: average_causal_effect(_mlp(), x, None, "quantiles", target=0, num_values=3))
    assert [w.category for w in said] == [ConstantGroupsWarning]


def test_repeats_said_in_the_audits_words_or_drawn_by_the_bootstrap_come_once(reworded):
    x = _x(1).expand(4, -1)  # identical samples: the audit's own note says so, not the core's repeats warning too
    said = _said(lambda: CausalGraphAudit(["0"], stability_resamples=0).run(_mlp(), Probe(x)))
    assert not any(issubclass(w.category, RepeatedSamplesWarning) for w in said)
    # a bootstrap resample repeats samples by design: graph_stability's resamples say nothing of the probe
    assert _said(lambda: graph_stability(_mlp(), _x(12), ["0"], resamples=2, noise=0.0, seed=0)) == []


def _sobol_core_reworded(monkeypatch):
    for name in ("sensitivity.samplers", "sensitivity.pick_freeze"):
        monkeypatch.setattr(importlib.import_module(f"lightning_causal.causal.{name}"), "warnings", _RewordedWarnings())


def test_the_sobol_audit_stays_quiet_of_the_cores_sampler_and_constant_warnings_however_worded(monkeypatch):
    _sobol_core_reworded(monkeypatch)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2)).double().eval()
    x = _x(40)[:, :3]
    audit = SobolAudit(n=64, sampler="copula", target=0, n_bootstrap=10)
    assert _said(lambda: audit.dry_run(model, Probe(x))) == []  # a correlation of 3 columns from 2 samples: singular
    said = _said(lambda: GaussianCopula(x[:2]))  # the core's, on 2 samples
    assert [w.category for w in said] == [ProbeContentsWarning]
    # a model that ignores its input: the audit says why in its own words, the core's warning does not come too
    with torch.no_grad():
        model[2].weight.zero_()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.run(model, Probe(x))
    assert [w for w in caught if str(w.message).startswith(REWORDED)] == []  # the core's, reworded
    assert any(f"SobolAudit {audit.name!r}: " in str(w.message) for w in caught)
    assert issubclass(ConstantOutputWarning, UserWarning)


class _RepeatedAndUnreached(nn.Module):
    """``body`` runs twice per pass; ``spare`` never runs."""

    def __init__(self):
        super().__init__()
        self.body, self.spare, self.head = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.head(torch.tanh(self.body(torch.tanh(self.body(x)))))


def test_the_cores_own_filters_of_site_warnings_hold_however_the_hooks_word_them(monkeypatch):
    """layer_causal_map says in its own words that a layer runs several times (capture's warning filtered), and its
    default layers leave out modules that do not run (the hooks' warning filtered): by category now."""
    monkeypatch.setattr(importlib.import_module("lightning_causal.causal.engine.intervention_hooks"), "warnings",
                        _RewordedWarnings())
    from lightning_causal.causal import (
        RepeatedCallsWarning,
        UnreachedSiteWarning,
        capture,
        layer_causal_map,
    )

    model, x = _RepeatedAndUnreached().double().eval(), _x(16)
    assert _said(lambda: layer_causal_map(model, x, None)) == []  # neither comes through the map's default layers
    said = _said(lambda: _run_capture(capture, model, x, ["body", "spare"]))  # while capture says both
    assert sorted(w.category.__name__ for w in said) == ["RepeatedCallsWarning", "UnreachedSiteWarning"]
    assert issubclass(RepeatedCallsWarning, UserWarning) and issubclass(UnreachedSiteWarning, UserWarning)


def _run_capture(capture, model, x, names):
    with torch.no_grad(), capture(model, names):
        model(x)


def _relu_of_the_sum() -> nn.Sequential:
    """out_0 = relu(x0 + x1), out_1 = -out_0: Saliency is 0 where x0 + x1 < 0."""
    model = nn.Sequential(nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 1.0]]))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        model[2].bias.zero_()
    return model.eval()


def test_the_captum_dry_run_stays_quiet_of_gradients_that_its_two_samples_zero_however_worded(monkeypatch):
    monkeypatch.setattr(importlib.import_module("lightning_causal.audits.captum_report"), "warnings", _RewordedWarnings())
    from lightning_causal.audits import CaptumBaseline

    audit = CaptumBaseline(methods=("Saliency",), target=0)
    x = torch.tensor([[-1.0, 0.5], [-0.6, 0.3], [1.0, 2.0], [0.5, 0.3], [2.0, -1.0]])  # the first 2: ReLU off
    assert _said(lambda: audit.dry_run(_relu_of_the_sum(), Probe(x))) == []
    full = _said(lambda: audit.run(_relu_of_the_sum(), Probe(x[:2])))
    assert [w.category for w in full] == [ProbeContentsWarning] and "gives exactly 0 in every probe sample" in _text(full[0])


def test_the_sobol_dry_run_stays_quiet_of_its_own_two_sample_warnings_however_worded(monkeypatch):
    """SobolAudit's own one-hot and constant-output warnings were silenced in its dry run by their openings
    ("SobolAudit 'name' with sampler=", "SobolAudit 'name': the "): by category now."""
    monkeypatch.setattr(importlib.import_module("lightning_causal.audits.sobol"), "warnings", _RewordedWarnings())
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 4, generator=g)
    x[:, 2:] = torch.randint(0, 2, (32, 2), generator=g).float()  # two independent binary columns, no block
    x[0, 2:], x[1, 2:] = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])  # the first 2 rows look one-hot
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    audit = SobolAudit(n=64, sampler="copula", target=0, n_bootstrap=10)
    assert _said(lambda: audit.dry_run(model, Probe(x))) == []
    full = _said(lambda: audit.run(model, Probe(x[:2])))  # the 2 rows' block, said by the full run on them
    assert [w.category for w in full] == [ProbeContentsWarning] and "one-hot block [2, 3]" in _text(full[0])
    with torch.no_grad():
        model[2].weight.zero_()  # an output that ignores the inputs
    assert _said(lambda: audit.dry_run(model, Probe(x))) == []
    full = _said(lambda: audit.run(model, Probe(x)))
    assert [w.category for w in full] == [ProbeContentsWarning] and "every index is set to 0" in _text(full[0])
