"""Long class names in figure titles and captions (newuser32 trial, a 1000-class image model, one class named
``"very long name " * 12``): a map's title quoted the whole name, five lines of a 4.2-inch figure, and each
counterfactual column grew with its longest caption line (0.075 inch a character): two columns made a figure
29.9 inches wide, shrunk to nothing in a TensorBoard card. A title quotes at most 40 characters of a name, a
caption 24, the names of one figure kept apart; the report holds them whole."""

import torch

from lightning_causal.audits import AuditResult
from lightning_causal.reporting.map_data import MapData, sample_title
from lightning_causal.reporting.tensorboard import TensorBoardRenderer

LONG = "very long name " * 12  # 180 characters
NAMES = [LONG + "A", LONG + "B", "tench"]


def test_a_map_title_quotes_at_most_40_characters_of_a_class_name() -> None:
    data = MapData(torch.zeros(1, 3), {}, "ie", {"targets": [0], "class_names": NAMES}, torch.tensor([2]))
    cut_a = "very long name very…ame very long name A"  # 40 characters, start … end: kept apart from ...B
    assert data.class_name(0) == repr(cut_a) and data.class_name(2) == "'tench'"
    assert sample_title(data, 0) == f"ie, sample 0 (label 'tench'): explains class {cut_a!r}"


def test_a_map_title_tells_apart_a_label_and_a_class_whose_names_start_alike() -> None:
    # review of feffc16: both names cut at their end read 'very long name very long…' twice, two classes as one
    data = MapData(torch.zeros(1, 3), {}, "ie", {"targets": [1], "class_names": NAMES}, torch.tensor([0]))
    title = sample_title(data, 0)
    assert title == ("ie, sample 0 (label 'very long name very…ame very long name A'): "
                     "explains class 'very long name very…ame very long name B'")


def test_counterfactual_captions_cut_long_names_and_keep_them_apart() -> None:
    rows = [{"index": 0, "label": 0, "predicted": 1, "counterfactual_predicted": 0, "success": True},
            {"index": 1, "label": 2, "predicted": 0, "counterfactual_predicted": 2, "success": True}]
    r = AuditResult("counterfactual", images={"counterfactuals": torch.rand(2, 1, 4, 14)},
                    tables={"counterfactuals": rows}, meta={"class_names": NAMES})
    fig = TensorBoardRenderer(max_samples=2).figures([r])["causal/counterfactual/images/counterfactuals"]
    assert fig.get_size_inches()[0] < 8  # was 29.9: two columns of 190-character lines
    first, second = (ax.get_title() for ax in fig.axes[:2])
    lines = first.split("\n")
    assert all(len(line) <= 40 for line in first.split("\n") + second.split("\n"))
    assert lines[0] != lines[1].replace("→ pred", "label")  # label (…A) and prediction (…B): two names, told apart
    assert second.startswith("label 'tench'")


def test_a_sobol_title_quotes_at_most_40_characters_of_the_explained_class() -> None:
    from lightning_causal.reporting.map_data import explained_quantity

    meta = {"target": 0, "explained": "softmax probability", "target_name": NAMES[0]}
    assert explained_quantity(meta) == f"P(class {LONG[:39] + '…'!r})"
    assert explained_quantity({**meta, "explained": "raw output"}) == f"output {LONG[:39] + '…'!r}"
