"""SobolAudit: analytic tabular and image cases, result layout, leave-no-trace, configuration errors."""

import json
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits.base import Probe
from lightning_causal.audits.sobol import SobolAudit
from tests.helpers.models import DigitsCNN, all_hook_counts, hand_linear, seeded


def _tabular_probe():
    g = torch.Generator().manual_seed(0)
    return Probe(torch.randn(256, 3, generator=g) * torch.tensor([1.0, 2.0, 0.5]))


def test_tabular_linear_output_matches_empirical_variances():
    """Raw output w.x with columns resampled independently from the probe: S_i = ST_i =
    w_i^2 var_i / sum (var_i the probe's own column variances)."""
    probe = _tabular_probe()
    w = torch.tensor([1.0, 1.0, -2.0])
    model = hand_linear(w.tolist(), bias=0.3)
    r = SobolAudit(n=4096, probability=False, top_k=2).run(model, probe)
    var = probe.first.var(0, unbiased=False)
    expected = (w**2 * var) / (w**2 * var).sum()
    assert torch.allclose(r.vectors["first"], expected, atol=0.01)
    assert torch.allclose(r.vectors["total"], expected, atol=0.01)
    top = int(expected.argmax())
    assert set(r.scalars) == {f"S/{top}", f"ST/{top}", f"S/{int(expected.argsort()[1])}",
                              f"ST/{int(expected.argsort()[1])}", "sum_S", "output_variance"}
    assert r.scalars["sum_S"] == pytest.approx(1.0, abs=0.02)
    rows = r.tables["indices"]
    assert [row["group"] for row in rows] == expected.argsort(descending=True).tolist()  # the index: no feature_names
    assert set(rows[0]) == {"group", "S", "S_ci", "ST", "ST_ci"} and rows[0]["ST_ci"][0] <= rows[0]["ST"]
    # [N, D]: maps over the whole probe ([1, D], each column its group's index), drawn only under figure_kind="sequence"
    assert torch.equal(r.maps["total"], r.vectors["total"].unsqueeze(0)) and r.meta["n_evaluations"] == 5 * 4096
    json.dumps(r.to_dict())


def test_image_patch_map_only_the_used_patch_matters():
    """A linear read-out of the top-left 4x4 patch only: ST = 1 for patch 0 and 0 elsewhere; the map
    holds each element's patch index."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(128, 1, 8, 8, generator=g)
    weight = torch.zeros(1, 64)
    weight.view(1, 8, 8)[0, :4, :4] = torch.randn(4, 4, generator=g)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 1))
    with torch.no_grad():
        model[1].weight.copy_(weight)
    r = SobolAudit(n=512, patch_size=4, probability=False).run(model, Probe(x))
    total = r.vectors["total"]
    assert total.shape == (4,)
    # a patch is drawn whole from one of the 128 probe images, a discrete variable: more Monte-Carlo error
    assert total[0] == pytest.approx(1.0, abs=0.05) and torch.allclose(total[1:], torch.zeros(3), atol=1e-9)
    m = r.maps["total"]
    assert m.shape == (1, 1, 8, 8)
    assert torch.allclose(m[0, 0, :4, :4], total[0].expand(4, 4)) and (m[0, 0, 4:, :] == total[2]).all()
    assert r.maps["first"].shape == (1, 1, 8, 8) and r.meta["groups"] == 4


def test_digits_cnn_leaves_no_trace_and_is_deterministic():
    model = seeded(DigitsCNN(channels=(4, 8), hidden=16, batch_norm=True, dropout=0.2), 0).train()
    model.bn1.eval()  # a submodule in a different mode must come back as it was
    x = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    bn = (model.bn1.running_mean.clone(), model.bn1.running_var.clone())
    state = torch.get_rng_state()
    audit = SobolAudit(n=128, patch_size=2, target=3, n_bootstrap=20)
    r1 = audit.run(model, Probe(x), max_batch_size=100)
    r2 = audit.run(model, Probe(x))
    assert torch.equal(torch.get_rng_state(), state)
    assert model.training and not model.bn1.training and model.dropout.training
    assert torch.equal(model.bn1.running_mean, bn[0]) and torch.equal(model.bn1.running_var, bn[1])
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in model.parameters())
    assert all_hook_counts(model) == 0
    assert r1.meta["target"] == 3 and r1.vectors["total"].shape == (16,)
    assert torch.allclose(r1.vectors["total"], r2.vectors["total"], atol=1e-6)  # batching-invariant
    assert not r1.non_finite()


def test_default_target_is_the_most_predicted_class():
    model = hand_linear([1.0, 0.0], 0.0)
    two_class = nn.Sequential(model, nn.Linear(1, 2))
    with torch.no_grad():
        two_class[1].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        two_class[1].bias.zero_()
    x = torch.cat([torch.ones(30, 2), -torch.ones(10, 2)]) + 0.1 * torch.randn(40, 2, generator=torch.Generator().manual_seed(0))
    r = SobolAudit(n=64).run(two_class, Probe(x))
    assert r.meta["target"] == 0  # class 0 wins for the 30 positive rows
    assert r.vectors["total"][1] == pytest.approx(0.0, abs=1e-9)  # column 1 has weight 0


def test_copula_sampler_and_explicit_feature_mask():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(512, 1, generator=g)
    x = torch.cat([z, z + 0.1 * torch.randn(512, 1, generator=g), torch.randn(512, 1, generator=g)], 1)
    model = hand_linear([1.0, 1.0, 1.0])
    r = SobolAudit(n=512, sampler="copula", feature_mask=torch.tensor([[0, 0, 1]]), probability=False).run(model, Probe(x))
    assert r.vectors["first"].shape == (2,) and r.meta["sampler"] == "copula"
    assert r.vectors["first"][0] > 0.7  # the correlated pair carries ~4/5 of the variance


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n": 1}, ValueError, "`n` to be an int >= 2 but got 1"),
        ({"top_k": 0}, ValueError, "`top_k` to be a positive int but got 0"),
        ({"n_bootstrap": -1}, ValueError, "`n_bootstrap` to be a non-negative int"),
        ({"patch_size": 0}, ValueError, "`patch_size` to be None or a positive int but got 0"),
        ({"target": -2}, ValueError, "`target` to be None or a non-negative int but got -2"),
        ({"sampler": "kde"}, ValueError, r"`sampler` to be one of \['empirical', 'copula'\] but got 'kde'"),
        ({"confidence": 1.5}, ValueError, r"`confidence` to be a number in \(0.0, 1.0\) but got 1.5"),
        ({"seed": "a"}, TypeError, "`seed` to be an int"),
        ({"feature_mask": torch.zeros(1, 3), "patch_size": None}, TypeError, "`feature_mask` to hold integer group ids"),
        ({"feature_mask": torch.zeros(1, 3, dtype=torch.long), "patch_size": 2}, ValueError, "at most one of"),
        ({"name": ""}, ValueError, "`name` to be a non-empty string"),
    ],
)
def test_bad_configuration(kwargs, error, match):
    with pytest.raises(error, match=match):
        SobolAudit(**kwargs)


def test_bad_probe_or_mask():
    model = hand_linear([1.0, 1.0, 1.0])
    probe = _tabular_probe()
    with pytest.raises(ValueError, match=r"Expected image inputs .* with `patch_size`"):
        SobolAudit(patch_size=2).validate(model, probe)
    with pytest.raises(ValueError, match="Expected one input tensor for SobolAudit"):
        SobolAudit().validate(model, Probe((probe.first, probe.first)))
    with pytest.raises(ValueError, match="number its groups 0..G-1 without gaps"):
        SobolAudit(feature_mask=torch.tensor([[0, 2, 2]])).run(model, probe)
    with pytest.raises(ValueError, match=r"shared by all samples .* but got \[256, 3\]"):
        SobolAudit(feature_mask=torch.zeros(256, 3, dtype=torch.long)).validate(model, probe)
    with pytest.raises(ValueError, match="at least 2 samples"):
        SobolAudit().validate(model, Probe(torch.zeros(1, 3)))
    with pytest.raises(ValueError, match="broadcastable"):
        SobolAudit(feature_mask=torch.zeros(1, 4, dtype=torch.long)).validate(model, probe)


def test_runs_on_the_probe_device_with_cpu_numbers(device):
    model = seeded(DigitsCNN(channels=(4, 8), hidden=16), 1)
    x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    audit = SobolAudit(n=64, patch_size=4, target=1, sampler="copula", n_bootstrap=10, probability=False)
    ref = audit.run(model, Probe(x))
    r = audit.run(model.to(device), Probe(x.to(device)))
    assert r.maps["total"].device.type == device.type
    assert ref.scalars["output_variance"] > 0
    assert torch.allclose(r.vectors["total"].cpu(), ref.vectors["total"], atol=1e-4)


def test_one_output_model_warns_and_meta_names_what_was_explained():
    """A one-output model is explained through its sigmoid (a binary classifier's probability)
    with a warning that names `probability=False`; the raw output is explained without one, and
    `meta["explained"]` says which. The sigmoid squashes w.x, so its output variance is smaller
    than the raw one's (here w.x has variance > 1 and sigmoid' <= 1/4)."""
    probe = _tabular_probe()
    model = hand_linear([1.0, 1.0, -2.0], bias=0.3)
    with pytest.warns(UserWarning, match="probability=False"):
        squashed = SobolAudit(n=256).run(model, probe)
    assert squashed.meta["explained"] == "sigmoid probability"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raw = SobolAudit(n=256, probability=False).run(model, probe)
        softmax = SobolAudit(n=256).run(nn.Linear(3, 2), probe)
    assert raw.meta["explained"] == "raw output" and softmax.meta["explained"] == "softmax probability"
    var = probe.first.var(0, unbiased=False)
    assert raw.scalars["output_variance"] == pytest.approx(float((torch.tensor([1.0, 1.0, 4.0]) * var).sum()), rel=0.1)
    assert squashed.scalars["output_variance"] < raw.scalars["output_variance"] / 16


def test_a_one_hot_group_is_drawn_as_observed_rows_and_has_its_closed_form_index():
    """The columns of a group were drawn independently: 45% of the rows were not one-hot, and a
    3-category feature with effects (0, 1, 2) beside an N(0, 1) column got S = 0.537, not 0.40."""
    g = torch.Generator().manual_seed(0)
    cat = torch.arange(300) % 3
    x = torch.cat([nn.functional.one_hot(cat, 3).float(), torch.randn(300, 1, generator=g)], 1)
    model = nn.Linear(4, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 1.0, 2.0, 1.0]]))
        model.bias.zero_()
    r = SobolAudit(n=4096, feature_mask=torch.tensor([[0, 0, 0, 1]]), probability=False, n_bootstrap=0).run(model, Probe(x))
    effect_var, noise_var = cat.float().var(unbiased=False), x[:, 3].var(unbiased=False)
    expected = effect_var / (effect_var + noise_var)
    assert float(r.vectors["first"][0]) == pytest.approx(float(expected), abs=0.02)
    assert float(r.vectors["total"][0]) == pytest.approx(float(expected), abs=0.02)
    from lightning_causal.causal.sensitivity.samplers import EmpiricalMarginals

    draws = EmpiricalMarginals(x, groups=[0, 0, 0, 1])(1000)
    assert bool((draws[:, :3].sum(1) == 1).all()) and set(draws[:, :3].unique().tolist()) == {0.0, 1.0}


def test_the_softmax_of_a_multi_output_regression_is_named_in_a_warning():
    """`(10 x0, x1)` regressed on float labels: the softmax of the two outputs is driven by x0
    alone, and SobolAudit / CaptumBaseline's curves explained it without a word."""
    import warnings

    from lightning_causal.audits import CaptumBaseline

    x = torch.rand(64, 2, generator=torch.Generator().manual_seed(0))
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[10.0, 0.0], [0.0, 1.0]]))
        model.bias.zero_()
    floats, classes = Probe(x, model(x).detach()), Probe(x, torch.arange(64) % 2)
    for audit, fix in ((SobolAudit(n=64, target=1, n_bootstrap=0), "probability=False"),
                       (CaptumBaseline(methods=("Saliency",), target=1), "score='raw'")):
        with pytest.warns(UserWarning, match=f"labels are floats.*{fix}"):
            audit.run(model, floats)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            audit.run(model, classes)


def test_a_target_the_model_does_not_have_fails_in_validate():
    """SobolAudit(target=9) on a 2-class model passed validate and failed after sampling, without naming `target`."""
    x = torch.rand(8, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"`target`.*0 to 1.*9"):
        SobolAudit(n=64, target=9).validate(nn.Linear(3, 2), Probe(x))
    with pytest.raises(ValueError, match=r"`target`.*0 to 0.*1"):
        SobolAudit(n=64, target=1, probability=False).validate(nn.Linear(3, 1), Probe(x))
    SobolAudit(n=64, target=1).validate(nn.Linear(3, 1), Probe(x))  # one logit: the sigmoid's two classes


def test_target_none_and_the_scalar_groups_are_kept_from_the_first_audit():
    """With target=None each audit re-picked the majority class (P(three), then P(nine) under one
    tag, and drift between them), and the top-k groups logged as scalars changed (series with gaps)."""
    x = torch.rand(64, 3, generator=torch.Generator().manual_seed(0))
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 3.0]]))
        model.bias.copy_(torch.tensor([1.0, 0.0]))  # class 0 most often predicted
    audit = SobolAudit(n=64, top_k=1, n_bootstrap=0)
    first = audit.run(model, Probe(x))
    with torch.no_grad():
        model.bias.copy_(torch.tensor([0.0, 2.0]))  # now class 1 is
        model.weight.copy_(torch.tensor([[0.0, 0.0, 3.0], [3.0, 0.0, 0.0]]))
    second = audit.run(model, Probe(x))
    assert first.meta["target"] == second.meta["target"] == 0
    group = int(first.vectors["total"].argmax())
    assert set(first.scalars) == set(second.scalars) == {f"S/{group}", f"ST/{group}", "sum_S", "output_variance"}
    state = audit.state_dict()
    assert state == {"target": 0, "scalar_groups": [group]}
    fresh = SobolAudit(n=64, top_k=1, n_bootstrap=0)
    fresh.load_state_dict(state)
    assert fresh.run(model, Probe(x)).meta["target"] == 0
    fresh.load_state_dict({})
    assert fresh.run(model, Probe(x)).meta["target"] == 1


class _Codes(nn.Module):
    """Two categorical columns (3 and 2 levels), one embedding each."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.head = nn.Embedding(3, 2), nn.Embedding(2, 2), nn.Linear(4, 2)

    def forward(self, codes):
        return self.head(torch.cat([self.a(codes[:, 0]), self.b(codes[:, 1])], 1)) * 3


def test_category_codes_get_the_exact_indices_of_their_observed_marginals():
    """An integer probe failed in the sampler: TypeError 'Expected argument `data` to be a
    floating-point tensor [N, ...] but got <class 'torch.Tensor'>'."""
    g = torch.Generator().manual_seed(0)
    codes = torch.stack([torch.randint(0, 3, (40,), generator=g), torch.randint(0, 2, (40,), generator=g)], 1)
    model = _Codes()
    r = SobolAudit(n=4096, target=1, n_bootstrap=0).run(model, Probe(codes))
    # exact: every combination of the observed marginals, weighted by their frequencies
    pa, pb = torch.bincount(codes[:, 0], minlength=3) / 40.0, torch.bincount(codes[:, 1], minlength=2) / 40.0
    grid = torch.cartesian_prod(torch.arange(3), torch.arange(2))
    with torch.no_grad():
        f = torch.softmax(model(grid), 1)[:, 1].view(3, 2).double()
    w = pa.double()[:, None] * pb.double()[None, :]
    mean = (w * f).sum()
    var = (w * (f - mean) ** 2).sum()
    s_a = (pa.double() * ((f * pb.double()).sum(1) - mean) ** 2).sum() / var
    s_b = (pb.double() * ((f * pa.double()[:, None]).sum(0) - mean) ** 2).sum() / var
    torch.testing.assert_close(r.vectors["first"].double(), torch.stack([s_a, s_b]), atol=0.03, rtol=0)
    torch.testing.assert_close(r.vectors["total"].double(), 1 - torch.stack([s_b, s_a]), atol=0.03, rtol=0)


def test_the_copula_sampler_names_a_one_hot_block_it_breaks():
    """sampler='copula' drew each column of a one-hot block on its own (12% of a trial's rows had
    no category or two), silently; the empirical sampler keeps the block as observed when it is one group."""
    g = torch.Generator().manual_seed(0)
    cat = torch.arange(60) % 3
    x = torch.cat([nn.functional.one_hot(cat, 3).float(), torch.randn(60, 1, generator=g)], 1)
    model = nn.Linear(4, 2)
    names = ["red", "green", "blue", "size"]
    with pytest.warns(UserWarning, match=r"sampler='copula' .* one-hot block \['red', 'green', 'blue'\]"):
        SobolAudit(n=64, sampler="copula", n_bootstrap=0, feature_names=names).run(model, Probe(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        # empirical with the block as one group: drawn as observed, no warning (one group per column warns:
        # tests/audits/test_trial_mixedtab_sobol_one_hot.py)
        SobolAudit(n=64, n_bootstrap=0, feature_mask=torch.tensor([[0, 0, 0, 1]]), feature_names=["colour", "size"]).run(model, Probe(x))
        SobolAudit(n=64, sampler="copula", n_bootstrap=0).run(model, Probe(torch.randn(60, 4, generator=g)))  # no block


def test_a_model_ending_in_a_sigmoid_gets_the_fix_the_warning_names():
    """A one-output model that returns its probability (ends in nn.Sigmoid) would be explained through a
    second sigmoid: the warning names `output=lambda out: out.float().logit(eps=1e-6)`, and with it the audit explains the
    same quantity as on the logit model (sigmoid(logit(p)) = p)."""
    probe = _tabular_probe()
    logit_model = hand_linear([1.0, 1.0, -2.0], bias=0.3)
    with pytest.warns(UserWarning, match=r"ends in a sigmoid already.*out\.float\(\)\.logit\(eps=1e-6\)"):
        ref = SobolAudit(n=256).run(logit_model, probe)
    with pytest.warns(UserWarning, match="sigmoid"):
        fixed = SobolAudit(n=256, output=lambda out: out.float().logit(eps=1e-6)).run(nn.Sequential(logit_model, nn.Sigmoid()), probe)
    torch.testing.assert_close(fixed.vectors["total"], ref.vectors["total"], rtol=1e-4, atol=1e-5)
    assert fixed.scalars["output_variance"] == pytest.approx(ref.scalars["output_variance"], rel=1e-4)
