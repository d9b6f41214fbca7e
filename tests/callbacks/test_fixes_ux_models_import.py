"""``import lightning_causal.models`` imported Lightning (seconds) for users of the plain models, the digits and
``fit_classifier`` alone: ``LightningClassifier`` was built at import time. It now loads on first use, from the same
place (``from lightning_causal.models import LightningClassifier``), and old pickles naming it there still load."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_the_plain_models_import_without_lightning():
    out = _run(
        "import sys\n"
        "from lightning_causal.models import MLP, DigitsCNN, fit_classifier, load_digits_tensors\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'lightning', 'pytorch_lightning', 'torchmetrics'}))"
    )
    assert out == "[]"


def test_the_classifier_is_still_a_lightning_module_importable_from_models():
    import lightning.pytorch as pl

    import lightning_causal.models as m
    from lightning_causal.models import LightningClassifier

    assert issubclass(LightningClassifier, pl.LightningModule) and m.LightningClassifier is LightningClassifier
    assert "LightningClassifier" in dir(m) and "LightningClassifier" in m.__all__


def test_an_unknown_name_is_an_attribute_error_naming_the_module():
    import pytest

    import lightning_causal.models as m

    with pytest.raises(AttributeError, match=r"module 'lightning_causal.models' has no attribute 'Nope'"):
        m.Nope  # noqa: B018


def test_a_pickle_naming_the_classifier_in_models_still_finds_it():
    """pickle finds ``lightning_causal.models.LightningClassifier`` through the module's ``__getattr__``."""
    import pickle

    from lightning_causal.models import LightningClassifier

    data = b"clightning_causal.models\nLightningClassifier\n."  # protocol 0: GLOBAL module name, STOP
    assert pickle.loads(data) is LightningClassifier
