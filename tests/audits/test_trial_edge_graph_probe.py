"""Trial "edge": CausalGraphAudit on a probe without spread (one sample, or copies of one sample).
Before, a one-sample probe gave an empty graph and NaN faithfulness with a note blaming "one
explained class and a read-out linear in the last layer", and identical samples gave nodes and
edges with z = inf, p = 0, silently; both now say that the probe has no spread."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import CausalGraphAudit, Probe


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).eval()


def _x(n: int) -> torch.Tensor:
    return torch.randn(n, 4, generator=torch.Generator().manual_seed(1))


def test_a_one_sample_probe_is_named_as_the_cause():
    # the tests are t-tests (693551a); without a standard error z = 0 takes the normal p: 0.5 one-sided, 1.0 two-sided
    with pytest.warns(UserWarning, match=r"the probe holds one sample.*paired t-tests.*z = 0, p = 0\.5: a unit is kept only with alpha >= 0\.5"):
        result = CausalGraphAudit(["0"], stability_resamples=0).run(_model(), Probe(_x(1)))
    with pytest.warns(UserWarning, match=r"the probe holds one sample.*z = 0, p = 1\.0: a unit is kept only with alpha=1\.0"):
        CausalGraphAudit(["0"], stability_resamples=0, alternative="two-sided").run(_model(), Probe(_x(1)))
    assert result.scalars["n_nodes"] == 0.0
    notes = " ".join(result.meta["notes"])
    assert "one sample" in notes and "read-out linear" not in notes


def test_identical_samples_are_named_as_the_cause_of_infinite_z():
    with pytest.warns(UserWarning, match=r"the probe holds 4 identical samples, so the paired t-tests.*z = inf"):
        result = CausalGraphAudit(["0"], stability_resamples=0).run(_model(), Probe(_x(1).expand(4, -1)))
    assert result.tables["nodes"] and all(row["z"] == float("inf") for row in result.tables["nodes"])


def test_a_probe_with_spread_and_its_dry_run_on_two_equal_rows_say_nothing():
    x = _x(6)
    x[1] = x[0]  # the dry run's two samples are equal, the probe's are not
    audit = CausalGraphAudit(["0"], stability_resamples=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*the probe holds", category=UserWarning)
        audit.dry_run(_model(), Probe(x))
        result = audit.run(_model(), Probe(x))
    assert not any("probe holds" in n for n in result.meta.get("notes", []))


def test_a_diverged_model_is_named_as_the_cause_of_nan_faithfulness():
    # before: the note blamed "one explained class and a read-out linear in the last layer", with NaN logits
    model = _model()
    with torch.no_grad():
        model[2].bias[0] = float("nan")
    result = CausalGraphAudit(["0"], target=0, stability_resamples=0).run(model, Probe(_x(6)))
    notes = " ".join(result.meta["notes"])
    assert "not finite" in notes and "read-out linear" not in notes
