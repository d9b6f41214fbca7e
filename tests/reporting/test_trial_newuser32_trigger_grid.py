"""A grid of reversed triggers per class drew the first 10 classes (newuser32 trial, BackdoorAudit over a model of
many classes): a flagged class 517 of 1000 was never drawn, its red frame given to no column. A grid of more classes
than its 10 columns draws the flagged ones, then the most suspect by the rule's statistic, in class order; its title
says so."""

import torch

from lightning_causal.audits import AuditResult
from lightning_causal.reporting.tensorboard import TensorBoardRenderer

C = 40


def _result(ratio_rule: bool) -> AuditResult:
    score = torch.linspace(1.0, 2.0, C)  # the ratio rule flags small scores
    score[[7, 33]] = torch.tensor([0.2, 0.5])
    anomaly = -score  # the index rule: large indices
    masks = torch.rand(C, 1, 4, 4)
    names = [f"class {c}" for c in range(C)]
    return AuditResult("backdoor", vectors={"flag_score": score, "anomaly_index": anomaly},
                       images={"reversed_masks": masks, "reversed_patterns": masks},
                       meta={"image_labels": {"reversed_masks": names, "reversed_patterns": names}, "flagged": [33],
                             "max_ratio": 0.6 if ratio_rule else None})


def test_the_grid_draws_the_flagged_and_most_suspect_classes() -> None:
    for ratio_rule in (True, False):
        fig = TensorBoardRenderer().figures([_result(ratio_rule)])["causal/backdoor/images/reversed"]
        titles = [ax.get_title() for ax in fig.axes[:10]]
        assert [t.split("\n")[0] for t in titles] == [f"class {c}" for c in (0, 1, 2, 3, 4, 5, 6, 7, 8, 33)]
        red = [t.split("\n")[0] for t, ax in zip(titles, fig.axes[:10]) if ax.title.get_color() != "black"]
        assert red == ["class 33"]  # the flagged class, framed
        assert "the 10 most suspect of 40" in fig._suptitle.get_text()


def test_a_grid_of_ten_classes_is_drawn_whole() -> None:
    r = _result(True)
    r.vectors = {k: v[:10] for k, v in r.vectors.items()}
    r.images = {k: v[:10] for k, v in r.images.items()}
    r.meta["image_labels"] = {k: v[:10] for k, v in r.meta["image_labels"].items()}
    r.meta["flagged"] = [7]
    fig = TensorBoardRenderer().figures([r])["causal/backdoor/images/reversed"]
    assert [ax.get_title().split("\n")[0] for ax in fig.axes[:10]] == [f"class {c}" for c in range(10)]
    assert "most suspect" not in fig._suptitle.get_text()
