"""Review of the newuser60 trial (6b0922c3 left it): Neural Cleanse on a class-incremental model whose classes not yet
seen are ruled out with -inf (``logits.masked_fill(~seen, float("-inf"))``) took those classes' masks into the median
and the MAD. The search has no gradient towards a class of output -inf: its trigger is never reached and its mask grows
as λ falls, so the median rose and every class the model could predict was flagged (a trained 4-class MLP of 8
outputs: norm ratios 0.19 to 0.24, all 4 flagged). Such classes are left out as an unattacked class is."""

import math
import warnings

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import Trigger, mad_anomaly_index, neural_cleanse
from lightning_causal.causal.backdoor.flagging import ReversedTriggers


class _Masked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 5))
        self.register_buffer("seen", torch.tensor([True, True, True, False, False]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).masked_fill(~self.seen, float("-inf"))


def _x() -> torch.Tensor:
    return torch.randn(32, 6, generator=torch.Generator().manual_seed(0))


def test_classes_ruled_out_on_every_input_are_left_out_of_the_median_and_never_flagged() -> None:
    res = neural_cleanse(_Masked(), _x(), 5, steps=40)
    seen = res.mask_norms[:3]  # the statistics of the 3 classes the model can predict, as their own
    torch.testing.assert_close(res.anomaly_index[:3], mad_anomaly_index(seen))
    torch.testing.assert_close(res.norm_ratio[:3], seen / seen.median())
    assert all(math.isnan(v) for v in [*res.anomaly_index[3:], *res.norm_ratio[3:], *res.score[3:]])
    assert 3 not in res.flagged and 4 not in res.flagged and res.most_suspect in (0, 1, 2)
    assert res.ruled_out == [3, 4] and res.unattacked == []


def test_a_ruled_out_class_is_never_flagged_however_small_its_mask() -> None:
    norms = torch.tensor([2.0, 10.0, 11.0, 12.0, 0.5, 40.0])  # class 4's and 5's masks measure no trigger
    triggers = [Trigger(torch.zeros(4), 0.0, target=c) for c in range(6)]
    r = ReversedTriggers(triggers, mad_anomaly_index(norms), norms, torch.ones(6), torch.ones(6), max_ratio=0.75,
                         ruled_out=[4, 5])
    assert r.norm_ratio[:4].tolist() == pytest.approx([2 / 10.5, 10 / 10.5, 11 / 10.5, 12 / 10.5])  # median of 2, 10, 11, 12: 10.5
    assert r.flagged == [0] and r.most_suspect == 0 and r.left_out == [4, 5]


def test_the_audit_names_the_ruled_out_classes() -> None:
    result = BackdoorAudit(steps=20).run(_Masked(), Probe(_x()))
    assert any(n.startswith("classes 3, 4 are ruled out (output -inf on every probe sample, and the reversed triggers moved "
                            "no sample into them)") and n.endswith("whether a trigger opens them for other inputs is not tested")
               for n in result.meta["notes"])
    assert math.isnan(result.scalars["anomaly_index/class_3"]) and math.isfinite(result.scalars["max_anomaly_index"])


class _Gated(nn.Module):
    """Class 4 is -inf where feature 0 is at most 0.5 (every probe sample), and finite (bias 5) above: ruled out for
    the probe, but a trigger that raises feature 0 reaches it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 5))
        with torch.no_grad():
            self.body[2].bias[4] = 5.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return torch.cat([out[:, :4], out[:, 4:].masked_fill(x[:, :1] <= 0.5, float("-inf"))], 1)


def test_a_class_ruled_out_on_the_probe_that_the_reversed_trigger_reaches_is_compared() -> None:
    """Second look at 36571f7b: a class -inf on every probe sample was left out on the clean outputs alone, though its
    reversed trigger moved every sample into it (attack rate 1, the smallest mask): its NaN hid a trigger the search
    found, and the note said no reversed trigger reaches it."""
    x = torch.rand(64, 6, generator=torch.Generator().manual_seed(0))
    x[:, 0] = 0.45 + 0.04 * x[:, 0]  # every probe sample below the gate
    model = _Gated()
    assert bool(model(x)[:, 4].isneginf().all())
    res = neural_cleanse(model, x, 5, steps=100, input_range=(0.0, 1.0))
    assert res.attack_rates[4] == 1.0 and bool((model(res.triggers[4].apply(x)).argmax(1) == 4).all())
    assert res.ruled_out == [] and res.left_out == []
    torch.testing.assert_close(res.norm_ratio, res.mask_norms / res.mask_norms.median())  # 5 norms: the median is one of them
    torch.testing.assert_close(res.anomaly_index, mad_anomaly_index(res.mask_norms))
    assert math.isfinite(res.score[4]) and res.most_suspect == 4  # the smallest mask


def test_reverse_trigger_warns_of_a_target_ruled_out_on_every_input_that_it_never_reaches() -> None:
    """Second look at 36571f7b: reverse_trigger, which shares the search and warns of an unattacked target, returned the
    meaningless mask of a class ruled out with -inf on every input with no word (neural_cleanse leaves it out)."""
    from lightning_causal.causal import reverse_trigger
    from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning

    with pytest.warns(ProbeContentsWarning, match=r"class 3's output is -inf on every one of the 32 inputs .* never reached it"):
        reverse_trigger(_Masked(), _x(), 3, steps=20)
    x = torch.rand(64, 6, generator=torch.Generator().manual_seed(0))
    x[:, 0] = 0.45 + 0.04 * x[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a class it can predict, and the gated class its trigger reaches: no warning
        reverse_trigger(_Masked(), _x(), 1, steps=20)
        t = reverse_trigger(_Gated(), x, 4, steps=100, input_range=(0.0, 1.0))
    assert bool((_Gated()(t.apply(x)).argmax(1) == 4).all())


class _TwoLeft(nn.Module):
    """Class 0 where feature 0 passes 0.5 (one feature moves an input there), class 1 where all of features 1-11 pass
    0.5 (eleven must move); classes 2-4 ruled out: a natural imbalance between the two classes left."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        l0, l1 = 20 * torch.relu(x[:, 0] - 0.5), 20 * (x[:, 1:].amin(1) - 0.5)
        return torch.stack([l0, l1] + [torch.full_like(l0, float("-inf"))] * 3, 1)


def test_a_flag_among_the_two_classes_left_besides_the_ruled_out_ones_warns_as_of_two_classes() -> None:
    """Second look at 36571f7b: with the ruled-out classes left out, a 5-output model compares 2 classes' trigger sizes,
    where a natural imbalance is flagged (as of a 2-class model), with no warning nor note."""
    from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning

    x = torch.rand(64, 12, generator=torch.Generator().manual_seed(0))
    x[32:, 1:] = 0.6 + 0.4 * x[32:, 1:]  # half the samples class 1
    x[32:, 0] *= 0.5
    with pytest.warns(ProbeContentsWarning, match=r"flagged class 0 among the 2 classes it compares \(the other 3 of the "
                                                  r"model's 5 left out: classes 2, 3, 4 ruled out with -inf on every "
                                                  r"input\): with two classes"):
        res = neural_cleanse(_TwoLeft(), x, 5, steps=100, input_range=(0.0, 1.0))
    assert res.ruled_out == [2, 3, 4] and res.flagged == [0]
    norms = res.mask_norms[:2]
    torch.testing.assert_close(res.norm_ratio[:2], norms / norms.mean())  # the median of two: their mean
    assert res.norm_ratio[0] <= 0.35  # the bound for inputs that are not images
    result = BackdoorAudit(steps=100, reverse_options={"input_range": (0.0, 1.0)}).run(_TwoLeft(), Probe(x))
    assert result.meta["flagged"] == [0]
    assert any(n.startswith("class 0 flagged among 2 classes (others left out; index ±0.67 at any sizes): a natural "
                            "imbalance")
               for n in result.meta["notes"])
