"""Backdoor core: Trigger, ASR, MAD anomaly index, Neural Cleanse, suspect units, poisoning."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from lightning_causal.causal.backdoor.flagging import (
    MAX_NORM_RATIO,
    MAX_PLAIN_RATIO,
    MAX_RATIO,
    PLAIN_TARGET_ASR,
    TARGET_ASR,
    resolve_max_ratio,
    resolve_target_asr,
)
from lightning_causal.causal.backdoor.mask_statistics import compact_ratio, norm_ratio
from lightning_causal.causal.backdoor.neural_cleanse import (
    ReversedTriggers,
    mask_concentration,
    neural_cleanse,
    reverse_engineer_triggers,
)
from lightning_causal.causal.backdoor.reverse import reverse_trigger
from lightning_causal.causal.backdoor.suspects import (
    MAD_CONSISTENCY,
    mad_anomaly_index,
    suspect_units,
)
from lightning_causal.causal.backdoor.triggers import Trigger, attack_success_rate, trigger_effect
from lightning_causal.datasets.poisoning import patch_trigger, poison
from tests.helpers.backdoor import TARGET, train_poisoned_mlp
from tests.helpers.models import all_hook_counts


@pytest.fixture(scope="module")
def poisoned():
    return train_poisoned_mlp()


# ----------------------------------------------------------------------------- Trigger / ASR
def test_trigger_apply_exact():
    mask = torch.tensor([[[0.0, 1.0], [0.5, 0.0]]])
    pattern = torch.tensor([[[9.0, 2.0], [4.0, 9.0]]])
    t = Trigger(mask, pattern, target=0)
    x = torch.tensor([[[[1.0, 1.0], [2.0, 3.0]]], [[[0.0, 5.0], [6.0, 7.0]]]])
    expected = torch.tensor([[[[1.0, 2.0], [3.0, 3.0]]], [[[0.0, 2.0], [5.0, 7.0]]]])
    assert torch.equal(t.apply(x), expected)
    assert t.norm == 1.5


def test_trigger_broadcasts_a_spatial_mask_over_channels():
    t = patch_trigger((3, 4, 4), size=1, position=(1, 2), value=torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1), target=1)
    out = t.apply(torch.zeros(2, 3, 4, 4))
    assert out[:, :, 1, 2].tolist() == [[1.0, 2.0, 3.0]] * 2 and float(out.sum()) == 12.0


def test_attack_success_rate_exact():
    model = nn.Linear(2, 3, bias=False)  # logits = x @ W.T, class = argmax of (x0, x1, 0)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    t = Trigger(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 2.0]), target=1)
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0], [-1.0, -1.0], [5.0, 5.0], [0.0, 0.0]])
    y = torch.tensor([0, 0, 2, 1, 2])  # row 3 is the target class: excluded
    # triggered: (1,2)->1 hit, (3,2)->0 miss, (-1,2)->1 hit, (0,2)->1 hit  => 3 of 4
    assert attack_success_rate(model, x, y, t) == 0.75
    assert attack_success_rate(model, x, y, t, max_batch_size=1) == 0.75
    assert torch.equal(trigger_effect(model, x[:2], t), torch.tensor([2.0, 2.0]))


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        (dict(mask=torch.tensor([0.0, 1.5]), pattern=torch.zeros(2), target=0), ValueError, "values in \\[0, 1\\]"),
        (dict(mask=torch.zeros(2), pattern=torch.zeros(2), target=-1), ValueError, "target.*>= 0"),
        (dict(mask=torch.zeros(2), pattern=torch.zeros(2), target=1.0), TypeError, "target"),
        (dict(mask=torch.zeros(2), pattern=torch.zeros(3), target=0), ValueError, "broadcastable"),
        (dict(mask=torch.zeros(2, dtype=torch.long), pattern=torch.zeros(2), target=0), TypeError, "mask"),
        (dict(mask=torch.zeros(2), pattern=torch.tensor([float("nan"), 0.0]), target=0), ValueError, "pattern"),
    ],
)
def test_trigger_rejects_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        Trigger(**kwargs)


def test_bad_inputs_give_clear_errors():
    t = Trigger(torch.zeros(1, 4, 4), torch.ones(1, 4, 4), target=5)
    with pytest.raises(ValueError, match="mask.*broadcast to one input of shape \\[1, 8, 8\\]"):
        t.apply(torch.zeros(2, 1, 8, 8))
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.zeros(4, 1, 4, 4)
    with pytest.raises(ValueError, match="target.*\\[0, 2\\].*got 5"):
        attack_success_rate(model, x, torch.zeros(4, dtype=torch.long), t)
    with pytest.raises(ValueError, match="whose true class is not the target"):
        attack_success_rate(model, x, torch.full((4,), 5), t)
    with pytest.raises(ValueError, match="`y`"):
        attack_success_rate(model, x, torch.zeros(3, dtype=torch.long), t)
    with pytest.raises(ValueError, match="`num_classes` to be an int >= 2"):
        neural_cleanse(model, x, 1)
    with pytest.raises(ValueError, match="`num_classes` to match the model's 3 outputs"):
        neural_cleanse(model, x, 4, steps=1)
    with pytest.raises(ValueError, match="`target_asr`"):
        neural_cleanse(model, x, 3, target_asr=1.5)
    with pytest.raises(ValueError, match="`steps`"):
        neural_cleanse(model, x, 3, steps=0)
    with pytest.raises(TypeError, match="`generator`"):
        neural_cleanse(model, x, 3, generator=0)
    with pytest.raises(ValueError, match="Unknown module name"):
        suspect_units(model, x, Trigger(torch.zeros(1, 4, 4), torch.ones(1, 4, 4), 1), "fc9")
    with pytest.raises(ValueError, match="`num_values`"):
        suspect_units(model, x, Trigger(torch.zeros(1, 4, 4), torch.ones(1, 4, 4), 1), "1", num_values=1)


# ----------------------------------------------------------------------------- MAD
def test_mad_anomaly_index_hand_computation():
    v = torch.tensor([1.0, 10.0, 11.0, 12.0, 13.0])  # median 11, |dev| = 10,1,0,1,2 -> MAD 1
    expected = torch.tensor([10.0, 1.0, 0.0, -1.0, -2.0]) / 1.4826
    assert torch.allclose(mad_anomaly_index(v), expected)
    assert torch.allclose(mad_anomaly_index(v, side="high"), -expected)
    assert torch.allclose(mad_anomaly_index(v, side="both"), expected.abs())
    even = torch.tensor([1.0, 2.0, 3.0, 10.0])  # median 2.5 (mean of the middle two), MAD 1.0
    assert torch.allclose(mad_anomaly_index(even, side="high"), torch.tensor([-1.5, -0.5, 0.5, 7.5]) / 1.4826)
    # against numpy on random data
    r = torch.rand(11, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    med = np.median(r.numpy())
    ref = (med - r.numpy()) / (MAD_CONSISTENCY * np.median(np.abs(r.numpy() - med)))
    assert np.allclose(mad_anomaly_index(r).numpy(), ref)


def test_mad_anomaly_index_zero_mad_falls_back_to_mean_deviation():
    idx = mad_anomaly_index(torch.tensor([1.0, 1.0, 1.0, 5.0]), side="high")  # MAD 0, mean |dev| 1
    assert torch.allclose(idx, torch.tensor([0.0, 0.0, 0.0, 4.0 / math.sqrt(math.pi / 2)]))  # mean |dev|'s own constant
    assert torch.equal(mad_anomaly_index(torch.ones(3)), torch.zeros(3))


@pytest.mark.parametrize(("values", "side", "match"), [
    (torch.tensor([1.0]), "low", "at least 2"), (torch.tensor([1.0, float("nan")]), "low", "finite"),
    (torch.ones(3), "up", "side"),
])
def test_mad_anomaly_index_rejects_bad_input(values, side, match):
    with pytest.raises(ValueError, match=match):
        mad_anomaly_index(values, side=side)


# ----------------------------------------------------------------------------- Neural Cleanse
def test_poisoned_model_has_a_working_backdoor(poisoned):
    model, trig, (_, _, xv, yv) = poisoned
    assert attack_success_rate(model, xv, yv, trig) > 0.95
    with torch.no_grad():
        assert (model(xv).argmax(1) == yv).float().mean() > 0.9


def test_reverse_engineering_flags_the_target_and_leaves_no_trace(poisoned):
    model, _, (_, _, xv, _) = poisoned
    model.train()
    rng = torch.get_rng_state()
    res = neural_cleanse(model, xv[:128], 10, steps=150, batch_size=32, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), rng)
    assert res.flagged[:1] == [TARGET] and float(res.anomaly_index[TARGET]) >= 2
    assert float(res.mask_norms[TARGET]) < 0.5 * float(res.mask_norms.median())
    assert res.attack_rates[TARGET] > 0.9
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert model.training and all_hook_counts(model) == 0
    model.eval()


def test_mask_concentration_hand_computation():
    m = torch.zeros(3, 1, 4, 4)
    m[0, 0, 1, 1], m[0, 0, 1, 2], m[0, 0, 3, 3] = 0.5, 0.25, 0.25  # best 2x2 window holds 0.75 of 1.0
    m[1, 0] = 1.0  # uniform: a 2x2 window holds 4 of 16
    assert torch.allclose(mask_concentration(m, window=2), torch.tensor([0.75, 0.25, 0.0]))
    assert torch.allclose(mask_concentration(m, window=3), torch.tensor([1.0, 9 / 16, 0.0]))
    assert torch.allclose(mask_concentration(m[:, 0], window=9), torch.tensor([1.0, 1.0, 0.0]))  # window clipped to the image


@pytest.mark.parametrize(("masks", "window", "match"), [
    (torch.ones(2, 4), 3, "masks"), (torch.ones(2, 3, 4, 4), 3, "masks"), (-torch.ones(2, 4, 4), 3, "non-negative"),
    (torch.ones(2, 4, 4), 0, "window"), (torch.ones(2, 4, 4), 1.5, "window")])
def test_mask_concentration_rejects_bad_input(masks, window, match):
    with pytest.raises(ValueError, match=match):
        mask_concentration(masks, window)


def test_min_concentration_flags_only_compact_anomalous_classes():
    idx, conc = torch.tensor([3.0, 2.5, 0.1, 2.2]), torch.tensor([1.0, 0.4, 1.0, 0.9])
    res = ReversedTriggers([], idx, torch.zeros(4), torch.zeros(4), torch.zeros(4), 2.0, conc)
    assert res.flagged == [0, 1, 3]
    assert ReversedTriggers([], idx, torch.zeros(4), torch.zeros(4), torch.zeros(4), 2.0, conc, 0.8).flagged == [0, 3]
    with pytest.raises(ValueError, match="concentration"):
        ReversedTriggers([], idx, torch.zeros(4), torch.zeros(4), torch.zeros(4), 2.0, None, 0.8)


def test_ratio_rule_and_index_rule_by_hand():
    norms = torch.tensor([2.0, 9.0, 10.0, 11.0, 5.9, 12.0])  # median 9.5
    ratio = norm_ratio(norms)
    assert torch.allclose(ratio, norms / 9.5)
    index = mad_anomaly_index(norms)
    res = ReversedTriggers([], index, norms, torch.zeros(6), torch.zeros(6), 2.0, max_ratio=0.6)
    assert res.flagged == [0]  # 2.0 / 9.5 = 0.21 <= 0.6; 5.9 / 9.5 = 0.62 is not
    assert torch.allclose(res.norm_ratio, ratio)
    by_index = ReversedTriggers([], index, norms, torch.zeros(6), torch.zeros(6), 2.0)  # max_ratio=None: Neural Cleanse's rule
    assert by_index.flagged == [c for c in index.argsort(descending=True).tolist() if index[c] >= 2.0]
    assert ReversedTriggers([], index, norms, torch.zeros(6), torch.zeros(6), 2.0, max_ratio=0.7).flagged == [0, 4]


def test_compact_score_rule_by_hand():
    norms = torch.tensor([2.0, 9.0, 10.0, 11.0, 6.0, 13.0])  # median 9.5
    conc = torch.tensor([1.0, 0.5, 0.5, 0.5, 0.5, 1.0])
    score = torch.tensor([2.0, 9.0 / 0.5, 10.0 / 0.5, 11.0 / 0.5, 6.0 / 0.5, 13.0]) / 9.5  # 0.21 1.89 2.11 2.32 1.26 1.37
    assert torch.allclose(compact_ratio(norms, conc, 1.0), score)
    assert torch.allclose(compact_ratio(norms, conc, 2.0), norms / 9.5 / conc**2)
    assert torch.allclose(compact_ratio(norms, None, 1.0), norms / 9.5)  # no images: the norm ratio
    index = mad_anomaly_index(norms)
    res = ReversedTriggers([], index, norms, torch.zeros(6), torch.zeros(6), 2.0, conc, max_ratio=0.7, compactness=1.0)
    assert torch.allclose(res.score, score)
    assert res.flagged == [0]  # class 4 (6.0 / 9.5 = 0.63) passes the plain ratio, but spread (0.5) it scores 1.26
    res = ReversedTriggers([], index, norms, torch.zeros(6), torch.zeros(6), 2.0, conc, max_ratio=1.3, compactness=1.0)
    assert res.flagged == [0, 4]  # lowest score first; 5 scores 1.37
    plain = ReversedTriggers([], index, norms, torch.zeros(6), torch.zeros(6), 2.0, conc, max_ratio=0.7)
    assert plain.flagged == [0, 4] and torch.equal(plain.score, plain.norm_ratio)  # compactness 0
    with pytest.raises(ValueError, match="power"):
        compact_ratio(norms, conc, -1.0)


def test_most_suspect_is_the_rules_first_class_flagged_or_not():
    norms = torch.tensor([6.0, 9.0, 10.0, 11.0, 8.0, 13.0])  # median 9.5
    conc = torch.tensor([0.3, 0.5, 0.5, 0.5, 1.0, 1.0])  # class 0 has the smallest norm but is spread out
    index = mad_anomaly_index(norms)
    res = ReversedTriggers([], index, norms, torch.zeros(6), torch.zeros(6), 2.0, conc, max_ratio=0.5, compactness=1.0)
    assert res.flagged == [] and int(index.argmax()) == 0
    assert res.most_suspect == 4 == int(res.score.argmin())  # 8 / 9.5 / 1.0 = 0.84 < 6 / 9.5 / 0.3 = 2.1
    assert ReversedTriggers([], index, norms, torch.zeros(6), torch.zeros(6), 2.0, conc).most_suspect == 0  # index rule


def test_max_ratio_auto_picks_the_bound_of_the_score():
    assert resolve_max_ratio("auto", True) == MAX_RATIO and resolve_max_ratio("auto", False) == MAX_NORM_RATIO
    assert resolve_max_ratio(None, True) is None and resolve_max_ratio(0.5, False) == 0.5
    for bad in ("tight", 0.0, -1.0):
        with pytest.raises(ValueError, match="max_ratio"):
            resolve_max_ratio(bad, True)
    kw = {"steps": 1, "batch_size": 4}
    images = neural_cleanse(nn.Flatten(), torch.rand(8, 1, 2, 2), 4, **kw)
    assert images.max_ratio == MAX_RATIO and images.compactness == 1.0 and images.concentration is not None
    assert neural_cleanse(nn.Flatten(), torch.rand(8, 1, 2, 2), 4, compactness=0.0, **kw).max_ratio == MAX_NORM_RATIO
    assert neural_cleanse(nn.Linear(4, 3), torch.rand(8, 4), 3, **kw).max_ratio == MAX_PLAIN_RATIO == 0.35  # not images
    assert neural_cleanse(nn.Flatten(), torch.rand(8, 1, 3), 3, **kw).max_ratio == MAX_PLAIN_RATIO  # a 1-D signal
    assert resolve_max_ratio("auto", False, image=False) == MAX_PLAIN_RATIO
    assert neural_cleanse(nn.Linear(4, 3), torch.rand(8, 4), 3, max_ratio=None, **kw).max_ratio is None
    with pytest.raises(ValueError, match="max_ratio"):
        neural_cleanse(nn.Linear(4, 3), torch.rand(8, 4), 3, max_ratio="x", **kw)
    with pytest.raises(ValueError, match="compactness"):  # checked for inputs that are not images too
        neural_cleanse(nn.Linear(4, 3), torch.rand(8, 4), 3, compactness=-1.0, **kw)


def test_target_rate_auto_and_the_tabular_default_raises_no_false_alarm(poisoned):
    assert resolve_target_asr("auto", True) == TARGET_ASR == 0.5 and resolve_target_asr("auto", False) == PLAIN_TARGET_ASR == 0.99
    assert resolve_target_asr(0.7, True) == 0.7
    for bad in ("high", 0.0, 1.5):
        with pytest.raises(ValueError, match="target_asr"):
            resolve_target_asr(bad, False)
    model, _, (_, _, xv, _) = poisoned
    clean = train_poisoned_mlp(rate=0.0)[0]
    tabular, g = xv[:256].reshape(-1, 64), lambda: torch.Generator().manual_seed(0)
    assert neural_cleanse(model, tabular, 10, generator=g()).flagged == [TARGET]
    assert neural_cleanse(clean, tabular, 10, generator=g()).flagged == []  # the defaults without images: 0.99 and 0.35
    assert neural_cleanse(clean, tabular, 10, generator=g(), target_asr=0.5, max_ratio=MAX_NORM_RATIO).flagged != []  # why not 0.5 there
    assert neural_cleanse(clean, xv[:256], 10, generator=g()).flagged == []  # images: 0.5 and the compact score


def test_neural_cleanse_through_forward_output_and_arguments(poisoned):
    model, _, (_, _, xv, _) = poisoned

    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, x, offset, scale=1.0):
            return {"logits": self.inner(x) * scale + offset, "aux": x.sum()}

    kw = dict(steps=40, batch_size=16)
    plain = neural_cleanse(model, xv[:64], 10, generator=torch.Generator().manual_seed(0), **kw)
    offset = torch.zeros(64, 10)  # one row per input: travels with its rows
    wrapped = neural_cleanse(Wrapped(), xv[:64], 10, generator=torch.Generator().manual_seed(0), output="logits",
                             additional_forward_args=(offset,), **kw)
    assert torch.allclose(wrapped.mask_norms, plain.mask_norms, atol=1e-4) and wrapped.flagged == plain.flagged
    shifted = offset.clone()
    shifted[:, TARGET] = -50.0  # the target class made unreachable for every input: its trigger cannot be found
    hidden = neural_cleanse(Wrapped(), xv[:64], 10, generator=torch.Generator().manual_seed(0), output="logits",
                            additional_forward_args=(shifted,), **kw)
    assert float(hidden.attack_rates[TARGET]) == 0.0 and TARGET not in hidden.flagged
    auto = neural_cleanse(Wrapped(), xv[:64], 10, generator=torch.Generator().manual_seed(0),
                          additional_forward_args=(offset,), **kw)  # output=None finds the "logits" entry
    assert torch.equal(auto.mask_norms, wrapped.mask_norms)
    as_tuple = nn.Sequential(model, nn.Identity())
    as_tuple.forward = lambda x: (model(x), x)  # a tuple needs output=0
    with pytest.raises(TypeError, match="output"):
        neural_cleanse(as_tuple, xv[:8], 10, steps=1)
    assert neural_cleanse(as_tuple, xv[:8], 10, steps=1, output=0).mask_norms.shape == (10,)


def test_reversed_patch_trigger_is_compact_and_survives_the_concentration_filter(poisoned):
    model, _, (_, _, xv, _) = poisoned
    kw = dict(steps=150, batch_size=32, generator=torch.Generator().manual_seed(0))
    plain = neural_cleanse(model, xv[:128], 10, **kw)
    assert torch.equal(plain.concentration, mask_concentration(torch.stack([t.mask for t in plain.triggers])))
    assert float(plain.concentration[TARGET]) > 0.8 > float(plain.concentration.median())  # a 2x2 patch vs spread masks
    kw["generator"] = torch.Generator().manual_seed(0)
    filtered = neural_cleanse(model, xv[:128], 10, min_concentration=0.8, **kw)
    assert filtered.flagged[:1] == [TARGET] and set(filtered.flagged) <= set(plain.flagged)
    with pytest.raises(ValueError, match="min_concentration"):
        neural_cleanse(model, xv[:8], 10, steps=1, min_concentration=1.5)
    with pytest.raises(ValueError, match="image inputs"):
        neural_cleanse(nn.Linear(4, 3), torch.rand(8, 4), 3, steps=1, min_concentration=0.8)


def test_localised_starts_never_give_a_worse_score_and_still_flag_the_target(poisoned):
    model, _, (_, _, xv, _) = poisoned

    def run(**kw):
        return neural_cleanse(model, xv[:128], 10, steps=150, batch_size=32, generator=torch.Generator().manual_seed(0), **kw)

    def own_score(res):  # the score without the median, which all starts of a run share
        return res.mask_norms / res.concentration

    one, six = run(), run(starts=6)
    # start 0 of the batched run is the single-start run (up to batching round-off): each class keeps
    # the start of lowest |m|/κ, so that is no larger; the plain norm can be (a compact mask wins)
    assert bool((own_score(six) <= own_score(one) + 1e-3).all())
    assert bool((own_score(six) < own_score(one) - 1e-3).any())  # some localised start found a better mask
    assert six.flagged[:1] == [TARGET]
    chunked = run(starts=6, max_batch_size=64)  # two (class, start) rows per pass, same random draws
    assert torch.allclose(chunked.mask_norms, six.mask_norms, atol=1e-3)
    # without the concentration in the score, the kept start is the smallest mask
    one0, six0 = run(compactness=0.0), run(starts=6, compactness=0.0)
    assert bool((six0.mask_norms <= one0.mask_norms + 1e-3).all())


def test_best_start_picks_the_lowest_score_among_starts_that_reached_the_rate():
    from lightning_causal.causal.backdoor.neural_cleanse import _best_start

    masks = torch.zeros(6, 1, 6, 6)  # 3 starts x 2 classes, row s * 2 + c
    masks[0, 0, :, 0] = 0.5          # start 0, class 0: a spread line, |m| 3, κ(3) 0.5 -> 6
    masks[2, 0, :2, :2] = 1.0        # start 1, class 0: a 2x2 patch, |m| 4, κ 1 -> 4 (larger, but compact)
    masks[4, 0, 0, :] = 0.1          # start 2, class 0: |m| 0.6, κ 0.5 -> 1.2, but it did not reach the rate
    masks[1, 0, 0, 0] = 1.0          # start 0, class 1: |m| 1, κ 1 -> 1
    masks[3, 0, 0, :2] = 0.2         # start 1, class 1: |m| 0.4, κ 1 -> 0.4, not reached
    masks[5, 0, 5, 5] = 2.0          # start 2, class 1: |m| 2, κ 1 -> 2
    patterns, lambdas = torch.arange(6.0).view(6, 1, 1, 1).expand(6, 1, 6, 6), torch.arange(6.0)
    reached = torch.tensor([True, True, True, False, False, True])
    m, p, lam = _best_start(masks, patterns, lambdas, reached, 2, window=3, compactness=1.0)
    assert lam.tolist() == [2.0, 1.0] and torch.equal(m[0], masks[2]) and p[1, 0, 0, 0] == 1.0
    m0, _, lam0 = _best_start(masks, patterns, lambdas, reached, 2, window=3, compactness=0.0)
    assert lam0.tolist() == [0.0, 1.0]  # by norm: the spread line (3 < 4)
    none, _, lam_none = _best_start(masks, patterns, lambdas, torch.zeros(6, dtype=torch.bool), 2, window=3, compactness=1.0)
    assert lam_none.tolist() == [0.0, 1.0]  # no start reached the rate: start 0


def test_localised_start_windows_and_initial_masks():
    from lightning_causal.causal.backdoor.neural_cleanse import (
        _local_theta,
        _squash,
        _window_corners,
    )

    assert _window_corners(8, 8, 9) == [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2), (0, 2), (4, 2), (2, 0), (2, 4)]
    assert _window_corners(5, 7, 2) == [(0, 0), (0, 3)]  # windows of 3x4 (half, rounded up)
    m = _squash(_local_theta(2, (1, 8, 8), (4, 0), torch.device("cpu")))
    assert m.shape == (2, 1, 8, 8)
    assert torch.allclose(m[:, :, 4:, :4], torch.tensor(0.6)) and torch.allclose(m[:, :, :4], torch.tensor(0.02))


@pytest.mark.parametrize("starts", [0, 11, 1.5, True])
def test_starts_must_be_an_int_in_range(starts):
    with pytest.raises(ValueError, match="`starts`"):
        neural_cleanse(nn.Flatten(), torch.rand(4, 1, 2, 2), 4, steps=1, starts=starts)


def test_localised_starts_need_images():
    with pytest.raises(ValueError, match="image inputs"):
        neural_cleanse(nn.Linear(4, 3), torch.rand(8, 4), 3, steps=1, starts=2)


def test_reverse_engineering_is_deterministic_and_batching_invariant(poisoned):
    model, _, (_, _, xv, _) = poisoned

    def run(**kw):
        return reverse_engineer_triggers(model, xv[:64], 10, steps=30, generator=torch.Generator().manual_seed(3), **kw)

    (t1, i1), (t2, i2) = run(), run()
    assert all(torch.equal(a.mask, b.mask) and torch.equal(a.pattern, b.pattern) for a, b in zip(t1, t2))
    assert torch.equal(i1, i2)
    t3, i3 = run(max_batch_size=128)  # two classes per forward pass, same random draws
    assert torch.allclose(torch.stack([t.mask for t in t1]), torch.stack([t.mask for t in t3]), atol=1e-3)
    assert [t.target for t in t1] == list(range(10)) and t1[0].mask.shape == (1, 8, 8)


def test_reverse_engineering_works_under_no_grad_and_inference_mode(poisoned):
    model, _, (_, _, xv, _) = poisoned
    with torch.inference_mode():
        x = xv[:32].clone()
        triggers, index = reverse_engineer_triggers(model, x, 10, steps=3)
    assert len(triggers) == 10 and torch.isfinite(index).all()


# ----------------------------------------------------------------------------- suspect units
def planted_model() -> nn.Sequential:
    """Unit 0 of layer "1" detects x3 > 1.5 (the trigger); it feeds only unit 4 of layer "3",
    which pushes logit 1 (the target). The other units read x0..x2."""
    m = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 2))
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor([[0, 0, 0, 1.0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 1, 0, 0]]))
        m[0].bias.copy_(torch.tensor([-1.5, 0, 0, 0, 0]))
        w = torch.zeros(6, 5)
        w[0, 1] = w[1, 2] = w[2, 3] = w[3, 4] = w[5, 1] = w[5, 2] = 1.0
        w[4, 0] = 3.0
        m[2].weight.copy_(w)
        m[2].bias.zero_()
        m[4].weight.copy_(torch.tensor([[1.0, 1, 1, 1, 0, 1], [0.5, 0.5, 0.5, 0.5, 2.0, 0.5]]))
        m[4].bias.zero_()
    return m


def test_suspect_units_find_the_units_a_planted_detector_feeds():
    model = planted_model()
    x = torch.rand(64, 4, generator=torch.Generator().manual_seed(0))
    trig = Trigger(torch.tensor([0.0, 0, 0, 1]), torch.tensor([0.0, 0, 0, 4.0]), target=1)
    assert attack_success_rate(model, x, torch.zeros(64, dtype=torch.long), trig) == 1.0
    rng = torch.get_rng_state()
    deep = suspect_units(model, x, trig, "3")
    # unit 4 moves from 0 to 3 * 2.5 = 7.5 under the trigger, and logit 1 reads it with weight 2
    assert deep.flagged == [4]
    assert torch.allclose(deep.score, torch.tensor([0.0, 0, 0, 0, 15.0, 0]))
    assert torch.allclose(deep.effect_clean, deep.score)  # the readout is linear: same on clean inputs
    shallow = suspect_units(model, x, trig, "1", max_batch_size=7)
    assert shallow.flagged == [0] and torch.isclose(shallow.score[0], torch.tensor(15.0))
    assert torch.equal(torch.get_rng_state(), rng) and all_hook_counts(model) == 0


def test_suspect_units_on_a_trained_poisoned_model(poisoned):
    model, trig, (_, _, xv, _) = poisoned
    su = suspect_units(model, xv[:128], trig, "2")
    assert su.ranking()[0] == int(su.score.argmax()) and su.anomaly_index.argmax() == su.score.argmax()
    # clamping the top-ranked half to clean means cuts the (distributed) backdoor more than the bottom half
    from lightning_causal.causal.engine.interventions import MeanOf, capture, intervene

    with capture(model, ["2"]) as acts:
        model(xv[:128])
    y0 = torch.full((128,), 0)
    asr = {}
    for name, units in (("top", su.ranking()[:16]), ("bottom", su.ranking()[-16:])):
        with intervene(model, {"2": MeanOf(acts["2"], units=units)}):
            asr[name] = attack_success_rate(model, xv[:128], y0, trig)
    assert asr["top"] < asr["bottom"] - 0.2


# ----------------------------------------------------------------------------- poisoning
def test_poison_stamps_and_relabels_a_share_of_non_target_samples():
    x, y = torch.zeros(20, 1, 4, 4), torch.arange(20) % 4
    t = patch_trigger((1, 4, 4), 2, "bottom_left", 1.0, target=2)
    rng = torch.get_rng_state()
    xp, yp, hit = poison(x, y, t, 0.25, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), rng)
    assert int(hit.sum()) == 5 and (y[hit] != 2).all() and (yp[hit] == 2).all() and torch.equal(yp[~hit], y[~hit])
    assert torch.equal(xp[hit][:, 0, 2:, :2], torch.ones(5, 2, 2)) and float(xp[~hit].sum()) == 0.0
    with pytest.raises(ValueError, match="`rate`"):
        poison(x, y, t, 1.5)
    with pytest.raises(ValueError, match="non-target samples"):
        poison(x, y, t, 0.9)
    with pytest.raises(ValueError, match="`size`"):
        patch_trigger((1, 4, 4), 5)
    with pytest.raises(ValueError, match="`position`"):
        patch_trigger((1, 4, 4), 2, "middle")


# ----------------------------------------------------------------------------- reverse_trigger


def test_reverse_trigger_in_a_region_stays_there_and_finds_the_planted_patch(poisoned):
    model, trig, (_, _, xv, yv) = poisoned
    kw = {"steps": 150, "batch_size": 32}
    region = torch.zeros(1, 8, 8)
    region[:, :3, :3] = 1  # the 2x2 top-left patch grown by one pixel
    model.train()
    rng = torch.get_rng_state()
    t = reverse_trigger(model, xv[:128], TARGET, region=region, generator=torch.Generator().manual_seed(0), **kw)
    assert torch.equal(torch.get_rng_state(), rng) and model.training and all(p.grad is None and p.requires_grad for p in model.parameters())
    model.eval()
    assert t.target == TARGET and float(t.mask[region == 0].abs().sum()) == 0.0
    assert attack_success_rate(model, xv, yv, t) > 0.9  # a 0.99-rate trigger, found inside the region


def test_reverse_trigger_region_of_ones_is_no_region_and_bad_regions_fail(poisoned):
    model, _, (_, _, xv, _) = poisoned
    kw = {"steps": 20, "batch_size": 16}
    free = reverse_trigger(model, xv[:64], 5, generator=torch.Generator().manual_seed(3), **kw)
    ones = reverse_trigger(model, xv[:64], 5, region=torch.ones(1, 8, 8), generator=torch.Generator().manual_seed(3), **kw)
    assert torch.equal(free.mask, ones.mask) and torch.equal(free.pattern, ones.pattern)
    for bad in (torch.ones(8, 8), torch.full((1, 8, 8), 0.5), torch.zeros(1, 8, 8)):
        with pytest.raises(ValueError, match="region"):
            reverse_trigger(model, xv[:8], 5, region=bad, steps=1)
    with pytest.raises(ValueError, match="`target`"):
        reverse_trigger(model, xv[:8], 10, steps=1)


class _StepTrigger(nn.Module):
    """Features-last sequences [N, 16, 1]: class 0 when steps 5-7 are all high (a planted trigger)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(3, 16, generator=g) * 0.3, requires_grad=False)

    def forward(self, x):
        z = x[:, :, 0] @ self.w.T
        return z + torch.stack([12.0 * (x[:, 5:8, 0].min(1).values - 0.8), torch.zeros(len(x)), torch.zeros(len(x))], 1)


def test_features_last_sequences_get_a_mask_over_time_steps_with_channel_dim():
    """[N, T, F] inputs got a [1, F] mask, one entry per feature shared by every step (with F = 1,
    one number for the whole input), silently."""
    from lightning_causal.causal.backdoor.neural_cleanse import mask_shape, neural_cleanse

    x = torch.rand(64, 16, 1, generator=torch.Generator().manual_seed(1)) * 0.5
    assert mask_shape(torch.zeros(2, 3, 8, 8)) == (1, 8, 8) and mask_shape(x, -1) == (16, 1) and mask_shape(x, None) == (16, 1)
    with pytest.warns(UserWarning, match="channel_dim=-1"):
        assert mask_shape(x) == (1, 1)
    res = neural_cleanse(_StepTrigger(), x, 3, steps=150, channel_dim=-1, input_range=(0.0, 1.0))
    mask = res.triggers[0].mask
    assert mask.shape == (16, 1)
    assert {5, 6, 7} <= set((mask[:, 0] > 0.5).nonzero().flatten().tolist()) and float(mask.sum()) < 8  # of 16 steps
    with pytest.raises(ValueError, match="`channel_dim`"):
        mask_shape(x, 0)


def test_reverse_options_are_checked_where_they_are_given():
    """A misspelt key failed when training started, naming neural_cleanse() and not reverse_options."""
    from lightning_causal.audits import BackdoorAudit
    from lightning_causal.repair import BackdoorSuppressionTerm

    for make in (lambda: BackdoorAudit(num_classes=3, reverse_options={"stepz": 3}),
                 lambda: BackdoorSuppressionTerm(None, reverse_options={"stepz": 3})):
        with pytest.raises(ValueError, match=r"`reverse_options`.*\['stepz'\]"):
            make()
    assert BackdoorSuppressionTerm(None, reverse_options={"channel_dim": -1}).reverse_options == {"channel_dim": -1}


class _TwoClasses(nn.Module):
    """Tabular, 2 classes, no planted trigger: class 1 is reached by one column (x0 above 0.5, steeply), class 0 by
    the mean of the other 15 columns above 0.5 (with x0 at most 0.5): a natural imbalance."""

    def forward(self, x):
        return torch.stack([10.0 * (x[:, 1:].mean(1) - 0.5), 40.0 * torch.relu(x[:, 0] - 0.5)], 1)


def test_a_flag_on_a_two_class_model_comes_with_a_warning():
    """With two classes the rule can only compare the two triggers: a clean binary tabular model
    (breast cancer) was flagged in a trial, silently. The samples here are in both classes, so the flag is the
    comparison's (this test's earlier model put every sample in class 0, whose trigger, with no sample to move,
    shrank to nothing: that class is no longer flagged, tests/causal/test_leftovers_s29d_unattacked_class.py)."""
    from lightning_causal.causal.backdoor.neural_cleanse import neural_cleanse

    x = torch.rand(64, 16, generator=torch.Generator().manual_seed(0))
    assert _TwoClasses()(x).argmax(1).bincount().tolist() == [21, 43]
    with pytest.warns(UserWarning, match="flagged class 1 of a model with 2 classes"):
        result = neural_cleanse(_TwoClasses(), x, 2, steps=150, input_range=(0.0, 1.0))
    assert result.flagged == [1] and result.unattacked == []
    assert float(result.mask_norms[1]) < float(result.mask_norms[0]) / 4  # one column against fifteen


class _Squeeze(nn.Module):
    def forward(self, x):
        return x.squeeze(-1)


class _OneValueSite(nn.Module):
    """A layer 'sq' whose output is [N] (Linear(4, 1) then a registered squeeze)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.sq, self.head = nn.Linear(4, 1), _Squeeze(), nn.Linear(1, 3)

    def forward(self, x):
        return self.head(self.sq(self.a(x)).unsqueeze(1))


def test_suspect_units_on_a_one_value_site_name_the_layer_and_its_shape():
    with pytest.raises(ValueError, match=r"output of 'sq' to have a unit dimension .* shape \[8\].*'sq:input'"):
        suspect_units(_OneValueSite(), torch.randn(8, 4), Trigger(torch.ones(4), torch.ones(4), 1), "sq")
