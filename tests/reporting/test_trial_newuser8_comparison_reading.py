"""The causal-vs-Captum table of TensorBoard's text card said nothing of how to read it (newuser8 trial): a
Captum user saw ``deletion_auc 0.466`` beside ``insertion_auc 0.936`` and ``spearman 0.979`` with no word
on which way is better, what the agreement compares or whether the areas are probabilities; only the
curve figure's title said "lower area = more faithful"."""

import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits import CompareSettings, Probe
from lightning_causal.reporting.summary import markdown_summary


def _card(model: nn.Module, x: torch.Tensor, **kwargs) -> str:
    return markdown_summary(0, [CaptumBaseline(("IntegratedGradients",), **kwargs).run(model, Probe(x))])


def test_the_comparison_table_says_how_its_columns_read_and_what_the_areas_are_of() -> None:
    torch.manual_seed(0)
    classifier = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    card = _card(classifier, x, settings=CompareSettings(reference_metrics=True))
    table, reading = card.split("causal vs Captum**")[1].split("Read: ")
    assert "| method | spearman | kendall | topk | deletion_auc | insertion_auc | stability | sensitivity_max | infidelity |" in table
    assert reading.splitlines()[0] == (
        "spearman, kendall, topk: agreement of the method's ranking of the groups with the causal one (1: the same); "
        "lower is better: deletion_auc, sensitivity_max, infidelity; higher is better: insertion_auc, stability; "
        "areas of the probability of the explained class (softmax).")
    logit = _card(nn.Linear(4, 1), x)  # one output: the curves record the raw output, not a probability
    assert "lower is better: deletion_auc; higher is better: insertion_auc, stability; areas of the raw output" in logit


def test_a_card_without_a_comparison_has_no_reading_line() -> None:
    from lightning_causal.audits.base import AuditResult

    card = markdown_summary(0, [AuditResult("ie", scalars={"mean_abs_effect": 0.1}, meta={"seconds": 0.1})])
    assert "Read:" not in card
