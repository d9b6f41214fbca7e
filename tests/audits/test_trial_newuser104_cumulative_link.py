"""A cumulative-link head (ordinal logistic regression: ``logit_k = θ_k − s(x)`` for ``rank <= k``) reads the other
way round from CORAL's ``rank > k``: the CORAL lambda of docs/your_model.md gave ``K − 1`` minus the expected rank on
such a head (every effect's sign reversed). The page's row for it, and its rank classes, equal the expected rank and
the class probabilities computed from ``P(rank <= k)`` by hand."""

import re
from pathlib import Path

import torch

THETA = torch.tensor([-1.5, -0.4, 0.6, 1.7])
PAGE = (Path(__file__).resolve().parents[2] / "docs" / "your_model.md").read_text(encoding="utf-8")


def _row(start: str) -> str:
    return next(line for line in PAGE.splitlines() if line.startswith(start))


def test_the_cumulative_link_rows_give_the_expected_rank_and_the_rank_classes():
    g = torch.Generator().manual_seed(0)
    s = 2 * torch.randn(64, 1, generator=g)
    out = THETA - s  # the head's logits of rank <= k
    cum = torch.sigmoid(out)
    p = torch.cat([cum[:, :1], cum[:, 1:] - cum[:, :-1], 1 - cum[:, -1:]], 1)  # P(rank = k), by hand
    expected = (p * torch.arange(5)).sum(1, keepdim=True)
    rank = eval(re.search(r"`(lambda out: [^`]*)`", _row("| expected rank (cumulative link"))[1])  # noqa: S307
    assert torch.allclose(rank(out), expected, atol=1e-6)
    coral = eval(re.search(r"`(lambda out: [^`]*)`", _row("| expected rank (CORAL)"))[1])  # noqa: S307
    assert torch.allclose(coral(out), 4 - expected, atol=1e-6)  # the sign the row warns of
    classes = _row("| rank classes, for the audits")
    s_of = eval("lambda out: " + re.search(r"cumulative link: `([^`]*)`", classes)[1])  # noqa: S307
    cat = re.search(r"`(torch\.cat\([^`]*)`", classes)[1]
    log_p = eval(cat, {"torch": torch, "s": s_of(out)})  # noqa: S307
    assert torch.allclose(log_p.exp(), p.clamp_min(1e-6), atol=1e-6)
