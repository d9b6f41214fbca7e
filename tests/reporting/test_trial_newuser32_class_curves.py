"""A curve over classes labelled every class (BackdoorAudit's anomaly index and flag score; newuser32 trial, 1000
classes named ImageNet's way): 1000 slanted names under a 5.2-inch axis, a black smear that took 5.1 s to lay out
(0.2 s now), and a class's long name ran off the figure. Up to 16 classes are labelled by name, cut to 24
characters and kept apart; more keep matplotlib's numbered ticks, the axis saying they are class indices."""

import torch

from lightning_causal.audits import AuditResult
from lightning_causal.reporting.tensorboard import TensorBoardRenderer


def _figure(names: list[str]):
    c = len(names)
    r = AuditResult("backdoor", curves={"anomaly_index": {"x": list(range(c)), "anomaly_index": torch.linspace(-1, 1, c).tolist()}},
                    meta={"class_names": names})
    return TensorBoardRenderer().figures([r])["causal/backdoor/curves/anomaly_index"]


def test_a_curve_over_many_classes_keeps_numbered_ticks() -> None:
    ax = _figure([f"n{i:08d} class name {i}" for i in range(100)]).axes[0]
    assert ax.get_xlabel() == "class (index)"
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert len(ticks) <= 12 and all(t.lstrip("−-").isdigit() for t in ticks)


def test_a_curve_over_few_classes_names_them_cut_and_apart() -> None:
    names = ["very long name " * 12 + "A", "very long name " * 12 + "B", "tench"]
    ax = _figure(names).axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert ax.get_xlabel() == "class" and labels[2] == "tench"
    assert all(len(t) <= 24 for t in labels) and len(set(labels)) == 3
