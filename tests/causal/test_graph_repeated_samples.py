"""A probe whose samples repeat (a validation set concatenated with itself, an oversampled class) makes the
causal graph's paired z-tests overconfident: each copy counts as an independent draw. `causal_graph` now says
so; the z-scores it would otherwise report silently are checked against the hand-computed inflation."""

import math
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import causal_graph


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).double().eval()


def _probe(n: int = 20) -> torch.Tensor:
    return torch.randn(n, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def test_a_probe_repeated_twice_warns_and_its_z_scores_grow_by_the_hand_computed_factor():
    model, x = _model(), _probe(20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # distinct samples: no warning
        once = causal_graph(model, x, ["1"], target=0, alpha=1.0, min_share=0.0, correction="none")
    with pytest.warns(UserWarning, match=r"20 of the probe's 40 samples repeat others \(20 distinct\)"):
        twice = causal_graph(model, torch.cat([x, x]), ["1"], target=0, alpha=1.0, min_share=0.0, correction="none")
    # same mean effect; the sample variance (n - 1 denominator) of the doubled probe over 2n samples gives a
    # standard error smaller by sqrt((2n - 1) / (n - 1)): the overconfidence the warning names
    shared = [u for u in once.node_stats if u in twice.node_stats and once.node_stats[u].get("se", 0) > 0]
    assert shared
    for u in shared:
        assert twice.node_stats[u]["effect"] == pytest.approx(once.node_stats[u]["effect"], rel=1e-12)
        assert twice.node_stats[u]["z"] / once.node_stats[u]["z"] == pytest.approx(math.sqrt(39 / 19), rel=1e-9)


def test_a_few_copies_as_real_data_has_do_not_warn():
    model, x = _model(), _probe(20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        causal_graph(model, torch.cat([x, x[:1]]), ["1"], target=0)  # 1 of 21 repeats (under a tenth)


def test_the_audit_says_it_once_and_not_for_its_dry_run():
    from lightning_causal.audits import CausalGraphAudit, Probe

    model, x = _model(), _probe(20)
    x[1] = x[0]  # the dry run's two samples are equal, the probe (1 copy in 20) is fine
    audit = CausalGraphAudit(["1"], target=0, stability_resamples=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r".* samples repeat others", category=UserWarning)
        audit.dry_run(model, Probe(x))
        audit.run(model, Probe(x))
    # a probe of identical samples: the audit's own note, not this warning besides
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.run(model, Probe(x[:1].expand(6, -1)))
    texts = [str(w.message) for w in caught]
    assert any("the probe holds 6 identical samples" in t for t in texts)
    assert not any("samples repeat others" in t for t in texts)
    # a probe repeated twice: the audit passes the warning on
    with pytest.warns(UserWarning, match=r"20 of the probe's 40 samples repeat others"):
        audit.run(model, Probe(torch.cat([_probe(20), _probe(20)])))
