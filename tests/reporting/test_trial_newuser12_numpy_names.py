"""Class and feature names given as NumPy strings (newuser12 trial): scikit-learn's datasets hold their
names in arrays (``load_breast_cancer().target_names``), so ``class_names=list(data.target_names)`` is a
list of ``np.str_``. The audits kept them as given, and every title that quotes a name with ``repr``
read ``P(class np.str_('benign'))`` (the Sobol' figure) or ``label np.str_('one')`` (the maps) under
NumPy 2. The audits now keep names as plain ``str``."""

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("matplotlib")

from lightning_causal import InputEffectAudit, SobolAudit  # noqa: E402
from lightning_causal.audits.base import Probe  # noqa: E402
from lightning_causal.reporting.tensorboard import TensorBoardRenderer  # noqa: E402


class _Writer:
    def add_histogram(self, *a, **k): pass
    def add_image(self, *a, **k): pass
    def add_text(self, tag, text, step): self.text = text
    def add_custom_scalars(self, *a, **k): pass
    def flush(self): pass


def _titles(monkeypatch, results, x, y):
    figures = {}
    monkeypatch.setattr(TensorBoardRenderer, "_figure", staticmethod(lambda w, tag, fig, step: figures.update({tag: fig})))
    writer = _Writer()
    TensorBoardRenderer().render(writer, 0, results, x, probe_labels=y)
    return {tag: fig._suptitle.get_text().replace("\n", " ") for tag, fig in figures.items() if fig._suptitle}, writer.text


def test_numpy_string_names_are_quoted_as_the_names_themselves(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2))
    x, y = torch.randn(32, 3), torch.randint(0, 2, (32,))
    classes, columns = list(np.array(["malignant", "benign"])), list(np.array(["radius", "texture", "area"]))
    assert type(classes[0]) is np.str_
    sobol = SobolAudit(n=64, n_bootstrap=10, target=1, feature_names=columns, class_names=classes)
    assert [type(n) for n in sobol.class_names + sobol.feature_names] == [str] * 5
    titles, text = _titles(monkeypatch, [sobol.run(model, Probe(x, y))], x, y)
    assert titles["causal/sobol/intervals/indices"].startswith("sobol: indices of P(class 'benign')")
    assert "np.str_" not in text


def test_numpy_string_class_names_in_image_map_titles(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 0, 1])
    audit = InputEffectAudit(patch_size=2, class_names=list(np.array(["zero", "one"])))
    titles, _ = _titles(monkeypatch, [audit.run(model, Probe(x, y))], x, y)
    assert titles["causal/input_effect/maps/sample_1"].startswith("input_effect, sample 1 (label 'one')")
    assert not any("np.str_" in t for t in titles.values())
