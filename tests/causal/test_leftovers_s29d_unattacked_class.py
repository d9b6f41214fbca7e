"""Neural Cleanse on inputs the model puts in one class (newuser55's trial, decided by leftovers_s29d).

Where every input is already predicted as class 0 (a model that predicts one class for all, a probe of one class,
the 2 samples of an audit's dry run), class 0's reversed trigger has no input to move: its loss is the mask penalty
alone, the mask shrank to almost nothing, and class 0 was flagged as a backdoor target (anomaly index 79, attack
rate 0.0, no note). Its trigger says nothing: it is never flagged, it is left out of the median and the MAD (its
index, norm ratio, score and attack rate NaN), and a ProbeContentsWarning and the audit's note say so.
"""

import math

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import Trigger, mad_anomaly_index, neural_cleanse
from lightning_causal.causal.backdoor.flagging import ReversedTriggers
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm

ALREADY = "every one of the 32 inputs is already predicted as class {}"
SIGMA = 1 / 1.4826  # two values: median their mean, MAD half their gap, so the indices are ±1/1.4826


def _one_class_model(bias: list[float]) -> tuple[nn.Module, torch.Tensor]:
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, len(bias))).eval()
    with torch.no_grad():
        model[2].bias.copy_(torch.tensor(bias))
    return model, x


@pytest.mark.parametrize("max_ratio", ["auto", None])  # the ratio rule; Neural Cleanse's index rule (index 79 before)
def test_a_class_every_input_is_already_in_is_not_flagged(max_ratio):
    model, x = _one_class_model([50.0, 0.0, -50.0])  # class 0 on every input
    assert bool((model(x).argmax(1) == 0).all())
    with pytest.warns(ProbeContentsWarning, match=ALREADY.format(0)):
        res = neural_cleanse(model, x, 3, steps=50, max_ratio=max_ratio)
    assert res.flagged == [] and res.unattacked == [0]  # was flagged: [0]
    assert math.isnan(res.anomaly_index[0]) and math.isnan(res.attack_rates[0]) and math.isnan(res.score[0])
    assert math.isnan(res.norm_ratio[0]) and float(res.mask_norms[0]) < 0.5  # the shrunk mask, as it is
    torch.testing.assert_close(res.anomaly_index[1:], mad_anomaly_index(res.mask_norms[1:]))  # the others' own MAD
    assert sorted(res.anomaly_index[1:].tolist()) == pytest.approx([-SIGMA, SIGMA])
    torch.testing.assert_close(res.norm_ratio[1:], res.mask_norms[1:] / res.mask_norms[1:].mean())  # 2 norms: their mean
    key = res.score if max_ratio is not None else -res.anomaly_index
    assert res.most_suspect == 1 + int(key[1:].argmin())  # never the unattacked class


def test_the_audit_leaves_it_out_of_its_scalars_and_says_why():
    model, x = _one_class_model([50.0, 0.0, -50.0])
    with pytest.warns(ProbeContentsWarning, match=ALREADY.format(0)):  # neural_cleanse's; the note names it
        result = BackdoorAudit(steps=50, class_names=["cat", "dog", "eel"]).run(model, Probe(x))
    assert result.scalars["flagged_count"] == 0.0 and result.tables["flagged_classes"] == []
    others = [result.scalars["anomaly_index/dog"], result.scalars["anomaly_index/eel"]]
    assert result.scalars["max_anomaly_index"] == pytest.approx(SIGMA) == max(others)
    assert math.isnan(result.scalars["anomaly_index/cat"]) and result.scalars["top_class"] in (1.0, 2.0)
    assert result.meta["anomaly_scale"] == "1.4826·MAD"  # of the 2 norms the index reads
    assert [n for n in result.meta["notes"] if n.startswith(ALREADY.format("cat") + ": its reversed trigger had no input")]


def test_with_two_classes_the_other_class_has_none_to_be_compared_with():
    model, x = _one_class_model([0.0, 50.0])  # class 1 on every input
    with pytest.warns(ProbeContentsWarning, match=ALREADY.format(1) + ".*with 2 classes the other class has none"):
        res = neural_cleanse(model, x, 2, steps=50)
    assert res.flagged == [] and res.unattacked == [1]  # no "flagged class 1 of a model with 2 classes" either
    assert res.anomaly_index.isnan().all() and res.norm_ratio.tolist()[0] == 1.0 and res.most_suspect == 0
    with pytest.warns(ProbeContentsWarning):
        result = BackdoorAudit(steps=50).run(model, Probe(x))
    assert result.scalars["flagged_count"] == 0.0 and math.isnan(result.scalars["max_anomaly_index"])
    assert result.scalars["top_class"] == 0.0 and "anomaly_scale" not in result.meta  # no spread of one norm


def test_the_repair_term_does_not_suppress_it():
    """The trigger=None term's detection is neural_cleanse's: with when_unflagged='top' it suppressed class 0's
    shrunk trigger before (the most anomalous class); now the most suspect class with inputs to move."""
    model, x = _one_class_model([50.0, 0.0, -50.0])
    term = BackdoorSuppressionTerm(when_unflagged="top", reverse_options={"steps": 50})
    with pytest.warns(UserWarning) as caught:
        term.setup(model, x)
    assert term.detection.unattacked == [0] and [t.target for t in term.triggers] == [term.detection.most_suspect] != [0]
    assert [w for w in caught if issubclass(w.category, ProbeContentsWarning) and ALREADY.format(0) in str(w.message)]


def test_the_rules_never_flag_an_unattacked_class_whatever_its_values():
    """By hand: norms [0.01, 2, 4, 6], class 0 unattacked: classes 1-3 have median 4 and MAD 2."""
    from lightning_causal.causal.backdoor.flagging import norm_statistics

    index, ratio = norm_statistics(torch.tensor([0.01, 2.0, 4.0, 6.0]), unattacked=[0])
    assert math.isnan(index[0]) and index[1:].tolist() == pytest.approx([2 / (1.4826 * 2), 0.0, -2 / (1.4826 * 2)])
    assert math.isnan(ratio[0]) and ratio[1:].tolist() == [0.5, 1.0, 1.5]
    triggers = [Trigger(torch.zeros(4), 0.0, target=c) for c in range(4)]
    given = torch.tensor([9.0, 3.0, 0.0, -3.0])  # class 0's index, as a caller might give it: the largest
    res = ReversedTriggers(triggers, given, torch.tensor([0.01, 2.0, 4.0, 6.0]), torch.ones(4), torch.ones(4), unattacked=[0])
    assert res.flagged == [1] and res.most_suspect == 1  # index rule: threshold 2
    ratio_rule = ReversedTriggers(triggers, index, torch.tensor([0.01, 2.0, 4.0, 6.0]), torch.ones(4), torch.ones(4),
                                  max_ratio=0.75, unattacked=[0])
    assert ratio_rule.norm_ratio[1:].tolist() == [0.5, 1.0, 1.5] and ratio_rule.flagged == [1] and ratio_rule.most_suspect == 1


def test_classes_with_inputs_to_move_keep_the_plain_statistics():
    model, x = _one_class_model([0.0, 0.0, 0.0])
    assert len(model(x).argmax(1).unique()) > 1
    res = neural_cleanse(model, x, 3, steps=20)
    assert res.unattacked == [] and bool(res.attack_rates.isfinite().all())
    torch.testing.assert_close(res.anomaly_index, mad_anomaly_index(res.mask_norms))
