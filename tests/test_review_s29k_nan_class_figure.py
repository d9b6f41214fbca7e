"""Review of 5e154c5f: BackdoorAudit's class that every probe sample is predicted as has a NaN anomaly index and flag
score; its curve figures drew no point there and said nothing (with 2 classes the anomaly index chart was empty). The
title names the values left blank."""

import warnings

from lightning_causal import BackdoorAudit
from lightning_causal.audits import Probe
from lightning_causal.reporting.tensorboard import TensorBoardRenderer
from tests.causal.test_leftovers_s29d_unattacked_class import _one_class_model


def _titles(result) -> dict[str, str]:
    return {tag.rsplit("/", 1)[-1]: fig.axes[0].get_title() for tag, fig in TensorBoardRenderer().figures([result]).items()}


def test_the_curve_figures_name_the_class_they_leave_blank():
    model, x = _one_class_model([50.0, 0.0, -50.0])  # class 0 ("cat") on every input: its values NaN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = BackdoorAudit(steps=5, class_names=["cat", "dog", "eel"]).run(model, Probe(x))
    assert r.curves["anomaly_index"]["anomaly_index"][0] != r.curves["anomaly_index"]["anomaly_index"][0]  # NaN
    assert _titles(r) == {"anomaly_index": "backdoor: anomaly_index (NaN, not drawn: class cat)",
                          "flag_score": "backdoor: flag_score (NaN, not drawn: class cat)"}


def test_with_two_classes_the_empty_chart_says_why():
    model, x = _one_class_model([0.0, 50.0])  # class 1 on every input: both indices NaN, class 1's score NaN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = BackdoorAudit(steps=5).run(model, Probe(x))
    assert _titles(r) == {"anomaly_index": "backdoor: anomaly_index (NaN, not drawn: class 0, 1)",
                          "flag_score": "backdoor: flag_score (NaN, not drawn: class 1)"}


def test_a_curve_without_nan_keeps_its_title():
    model, x = _one_class_model([0.0, 0.0, 0.0])  # inputs in several classes
    r = BackdoorAudit(steps=5).run(model, Probe(x))
    assert _titles(r) == {"anomaly_index": "backdoor: anomaly_index", "flag_score": "backdoor: flag_score"}


def test_the_text_card_keeps_that_the_class_is_not_flagged():
    """The note of that class was cut on the text card (160 characters a note) before it said what was decided:
    '... had no input to move and shrank under the mask penalty alone, so class cat i…'."""
    from lightning_causal.reporting.summary import markdown_summary

    model, x = _one_class_model([50.0, 0.0, -50.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = BackdoorAudit(steps=5, class_names=["cat", "dog", "eel"]).run(model, Probe(x))
    line = next(n for n in markdown_summary(0, [r]).splitlines() if "already predicted" in n)
    assert line.startswith("- backdoor: every one of the 32 inputs is already predicted as class cat: its reversed trigger "
                           "had no input to move, so it is not flagged; ")
