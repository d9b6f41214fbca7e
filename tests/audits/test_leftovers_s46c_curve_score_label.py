"""The deletion/insertion curves' label (``meta["curve_score"]``: the figure's y axis and the card's "areas of the ...")
said "raw output (logit or regression value)" when the explained output was a probability: a model ending in a sigmoid,
or an ``output=`` reading probabilities (DETR's best probability per class, ``CompareSettings(score="raw")``). It is now
read from what is explained (newuser122 section 4)."""

import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits import CompareSettings, Probe
from lightning_causal.reporting.comparison import curves_figure
from lightning_causal.reporting.summary import markdown_summary


def _x() -> torch.Tensor:
    return torch.randn(12, 4, generator=torch.Generator().manual_seed(1))


def _run(model: nn.Module, **kwargs):
    return CaptumBaseline(("IntegratedGradients",), **kwargs).run(model.eval(), Probe(_x()))


def test_a_sigmoid_output_is_labelled_a_probability_on_the_axis_and_the_card():
    torch.manual_seed(0)
    result = _run(nn.Sequential(nn.Linear(4, 1), nn.Flatten(0), nn.Sigmoid()))
    score = result.meta["curve_score"]
    assert score == "raw output: a probability or a score in [0, 1]"
    assert curves_figure({"deletion": result.curves["deletion"]}, score).axes[0].get_ylabel() == score
    assert "areas of the raw output: a probability or a score in [0, 1]." in markdown_summary(0, [result])


def test_an_output_function_giving_probabilities_is_labelled_so():
    torch.manual_seed(0)
    set_model = nn.Sequential(nn.Linear(4, 20), nn.Unflatten(1, (5, 4)))  # 5 queries of 3 classes + "no object"
    result = _run(set_model, output=lambda out: out.softmax(-1)[..., :-1].amax(1), target=1,
                  settings=CompareSettings(score="raw"))
    assert result.meta["curve_score"] == "raw output: a probability or a score in [0, 1]"
    mixture = nn.Sequential(nn.Linear(4, 3), nn.Softmax(-1))  # rows summing to 1, read as they are
    result = _run(mixture, target=2, settings=CompareSettings(score="raw"))
    assert result.meta["curve_score"] == "raw output: a probability (every row sums to 1), in [0, 1]"


def test_logits_and_regressions_keep_their_label():
    torch.manual_seed(0)
    regression = _run(nn.Linear(4, 1)).meta["curve_score"]
    assert regression == "raw output (logit or regression value, in the output's units)"
    classifier = _run(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)))
    assert classifier.meta["curve_score"] == "probability of the explained class (softmax)"
    logits = _run(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)), settings=CompareSettings(score="raw"))
    assert logits.meta["curve_score"] == regression
