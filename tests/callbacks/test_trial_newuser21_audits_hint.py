"""``CausalAuditCallback(audits=...)`` takes what its hint, ``Audit | Sequence[Audit]``, says: one audit
alone, a list, a tuple or any other sequence (a ``collections.UserList`` was refused, "Expected argument
`audits` to be a non-empty list", though the hint said ``Sequence``); a string, which type checkers
flag, is refused naming ``audits``."""

from __future__ import annotations

from collections import UserList

import pytest
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal import CausalAuditCallback, InputEffectAudit, UnitImportanceAudit


@pytest.mark.parametrize("wrap", [list, tuple, UserList, lambda a: a[0]], ids=["list", "tuple", "UserList", "one"])
def test_audits_take_one_audit_or_any_sequence(wrap):
    audits = [InputEffectAudit(), UnitImportanceAudit(["0"])]
    cb = CausalAuditCallback(wrap(audits))
    expected = audits[:1] if wrap not in (list, tuple, UserList) else audits
    assert isinstance(cb.audits, list) and cb.audits == expected


@pytest.mark.parametrize("bad", ["input_effect", ["input_effect"], [], None])
def test_audits_refuse_strings_and_empty(bad):
    with pytest.raises(MisconfigurationException, match="`audits`"):
        CausalAuditCallback(bad)
