"""Sobol' interval bars of input groups with a box name where each lies, as the card's rows do (not a bare id)."""

import torch

from lightning_causal.audits import Probe, SobolAudit
from lightning_causal.audits.group_regions import region_text
from lightning_causal.reporting import TensorBoardRenderer


def test_the_bars_of_image_patches_name_their_rows_and_cols():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    x = torch.rand(8, 1, 8, 8)
    result = SobolAudit(n=64, n_bootstrap=5, patch_size=4).run(model, Probe(x))
    figure = TensorBoardRenderer().figures([result], x)["causal/sobol/intervals/indices"]
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    expected = [f"{row['group']} ({region_text(row)})" for row in result.tables["indices"]]
    assert labels == expected and "0 (rows 0–3, cols 0–3)" in labels


def test_named_features_keep_their_names():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    x = torch.rand(16, 3)
    result = SobolAudit(n=64, n_bootstrap=5, feature_names=["age", "income", "score"]).run(model, Probe(x))
    figure = TensorBoardRenderer().figures([result], x)["causal/sobol/intervals/indices"]
    assert {t.get_text() for t in figure.axes[0].get_yticklabels()} == {"age", "income", "score"}
