"""Multi-label classifiers (one sigmoid per output, multi-hot labels): what the softmax-based audits
say, and the documented way to explain one label's probability."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline
from lightning_causal.audits.base import Probe
from lightning_causal.audits.sobol import SobolAudit


def _labels_model():
    """Three labels, label k = x_k > 0.5: each output reads its own column only."""
    x = torch.rand(128, 3, generator=torch.Generator().manual_seed(0))
    model = nn.Linear(3, 3)
    with torch.no_grad():
        model.weight.copy_(torch.diag(torch.tensor([8.0, 6.0, 4.0])))
        model.bias.copy_(torch.tensor([-4.0, -3.0, -2.0]))
    return model, x, (x > 0.5).float()


def test_multi_hot_labels_are_named_with_the_way_to_explain_one_label():
    """Multi-hot labels were called "floats (a regression?)" and the fix offered was the raw
    output: the user of a multi-label model was not told that each label's sigmoid is what the
    model predicts, nor how to explain it."""
    model, x, labels = _labels_model()
    for audit, fix in ((SobolAudit(n=64, target=1, n_bootstrap=0), "probability=False"),
                       (CaptumBaseline(methods=("Saliency",), target=1), "score='raw'")):
        with pytest.warns(UserWarning, match=rf"multi-hot \[N, 3\] \(a multi-label classifier\?\).*out\[:, \[k\]\].*{fix}"):
            audit.run(model, Probe(x, labels))
    with pytest.warns(UserWarning, match="labels are floats \\(a regression\\?\\)"):  # real-valued labels: as before
        SobolAudit(n=64, target=1, n_bootstrap=0).run(model, Probe(x, labels + 0.25))


def test_one_label_sigmoid_is_explained_by_its_own_column():
    """The recipe of the warning: `output=lambda out: out[:, [k]]` explains sigmoid(z_k), which
    depends on column k alone (S_k = ST_k = 1, the others 0), without the softmax warning (the
    one-output note names the sigmoid); the softmax over the three outputs, explained by default,
    depends on every column."""
    model, x, labels = _labels_model()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        one = SobolAudit(n=2048, target=1, n_bootstrap=0, output=lambda out: out[:, [1]]).run(model, Probe(x, labels))
    assert [str(w.message) for w in record if "softmax" in str(w.message)] == []
    assert any("sigmoid(output)" in str(w.message) for w in record)
    assert one.meta["explained"] == "sigmoid probability"
    assert torch.allclose(one.vectors["total"], torch.tensor([0.0, 1.0, 0.0]), atol=0.02)
    assert torch.allclose(one.vectors["first"], torch.tensor([0.0, 1.0, 0.0]), atol=0.05)
    with pytest.warns(UserWarning, match="multi-label"):
        mixed = SobolAudit(n=2048, target=1, n_bootstrap=0).run(model, Probe(x, labels))
    assert float(mixed.vectors["total"][0]) > 0.1 and float(mixed.vectors["total"][2]) > 0.05


def test_fairness_audit_names_multi_hot_labels():
    """FairnessAudit on a multi-label probe failed deep in the group rates with "Expected argument
    `preds` to be a 1-d tensor but got torch.Size([6, 3])": no parameter of the user's was named."""
    from lightning_causal.audits import FairnessAudit

    model, x, labels = _labels_model()
    x = x[:6].clone()
    x[:, 0] = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])

    def flip(rows):
        rows = rows.clone()
        rows[:, 0] = 1 - rows[:, 0]
        return rows

    with pytest.raises(ValueError, match=r"FairnessAudit needs one class label per probe sample, \[6\], but got \[6, 3\].*multi-label"):
        FairnessAudit(flip, sensitive=0).run(model, Probe(x, labels[:6]))
    FairnessAudit(flip, sensitive=0).run(model, Probe(x, (x[:, 1] > 0.5).long()))  # one class per sample: runs
