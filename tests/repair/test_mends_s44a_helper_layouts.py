"""The repair module's terms' passes wrote into a kNN datastore object of the user's whose keys live in a dict
(``self.store.bank["keys"]``) or are created at the first training call (``self.store.keys = None`` until then): the
bank held other rows than plain training puts there (final read A44). Both are now found and put back."""

from __future__ import annotations

import pytest
import torch

from tests.repair import test_newuser116_datastore_object as T


class _Lazy:
    def __init__(self) -> None:
        self.keys, self.vals, self.ptr = None, None, 0


class _Dicted:
    def __init__(self) -> None:
        self.bank = {"keys": torch.full((T.Q, T.D), float("nan")), "vals": torch.full((T.Q, T.C), 1.0 / T.C)}
        self.ptr = 0

    @property
    def keys(self) -> torch.Tensor:
        return self.bank["keys"]

    @property
    def vals(self) -> torch.Tensor:
        return self.bank["vals"]


class _LazyKNN(T._StoreKNN):
    def __init__(self) -> None:
        super().__init__()
        self.store = _Lazy()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.store.keys is None:
            self.store.keys, self.store.vals = torch.full((T.Q, T.D), float("nan")), torch.full((T.Q, T.C), 1.0 / T.C)
        return super().forward(x)


class _DictKNN(T._StoreKNN):
    def __init__(self) -> None:
        super().__init__()
        self.store = _Dicted()


@pytest.mark.filterwarnings("ignore:.*self.log.*:UserWarning")
@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("kind", [_LazyKNN, _DictKNN])
def test_the_terms_leave_the_bank_as_plain_training_does(monkeypatch: pytest.MonkeyPatch, kind: type, fuse: bool) -> None:
    monkeypatch.setattr(T, "_StoreKNN", kind)
    plain, repaired = T._fit(False, fuse), T._fit(True, fuse)
    assert repaired.store.ptr == plain.store.ptr == 4 * T.N % T.Q
    assert torch.equal(repaired.store.keys.nan_to_num(-1.0), plain.store.keys.nan_to_num(-1.0))
