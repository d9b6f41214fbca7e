"""The bundled data modules refuse a bad seed or validation share when built, not first at `setup` inside the fit."""

import pytest

from lightning_causal.datamodules import DigitsDataModule, FairnessDataModule


@pytest.mark.parametrize("module", [DigitsDataModule, FairnessDataModule])
@pytest.mark.parametrize(("kwargs", "match"), [
    ({"seed": -1}, r"`seed` to be an int in \[0, 18446744073709551615\] but got -1"),
    ({"val_fraction": 1.0}, r"`val_fraction` to be a number in \(0, 1\) but got 1.0"),
    ({"val_fraction": "0.2"}, r"`val_fraction` to be a number in \(0, 1\) but got '0.2'"),
])
def test_bad_arguments_are_refused_at_construction(module, kwargs, match):
    with pytest.raises(ValueError, match=match):
        module(**kwargs)


def test_good_arguments_are_kept():
    assert DigitsDataModule(seed=3, val_fraction=0.25).seed == 3
    assert FairnessDataModule(seed=2**64 - 1).seed == 2**64 - 1
