"""Without scikit-learn, DigitsDataModule's error named load_digits_tensors only (newuser25 trial, the wheel without
the examples extra): the message names both ways to the digits and the extra that brings them."""

from __future__ import annotations

import sys

import pytest

from lightning_causal.datamodules import DigitsDataModule
from lightning_causal.models import load_digits_tensors


@pytest.mark.parametrize("call", [lambda: load_digits_tensors(), lambda: DigitsDataModule().setup("fit")])
def test_the_digits_without_scikit_learn_name_the_extra(monkeypatch, call):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails as if scikit-learn were missing
    with pytest.raises(ImportError, match=r"DigitsDataModule\) needs scikit-learn: pip install 'lightning_causal\[examples\]'"):
        call()
