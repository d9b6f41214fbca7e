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


def test_long_class_names_are_wrapped_and_kept_apart_in_the_grid_columns() -> None:
    # review of 51a9654: a grid column is 0.62 inch; ImageNet's names ('n01440764 tench, Tinca tinca') ran into
    # each other over the ten columns, and names alike in their first characters would have read as one
    from lightning_causal.reporting.image_figures import image_grid_figure

    imagenet = [f"n0144076{c} tench, Tinca tinca\nAI 2.0" for c in range(3)]
    fig = image_grid_figure({"mask": torch.rand(3, 1, 4, 4)}, imagenet)
    assert [ax.get_title() for ax in fig.axes] == [f"n0144076{c}\ntench,…\nAI 2.0" for c in range(3)]
    assert {ax.title.get_fontsize() for ax in fig.axes} == {7.0}
    alike = ["very long name " * 12 + "A", "very long name " * 12 + "B"]
    fig = image_grid_figure({"mask": torch.rand(2, 1, 4, 4)}, alike)
    assert [ax.get_title() for ax in fig.axes] == ["very lon…\ng name A", "very lon…\ng name B"]
    fig = image_grid_figure({"mask": torch.rand(2, 1, 4, 4)}, ["class 0", "cat"])  # short names: as before
    assert [(ax.get_title(), ax.title.get_fontsize()) for ax in fig.axes] == [("class 0", 9.0), ("cat", 9.0)]
