"""Validation sweep (newuser20): AuditEarlyStopping(patience=-1) and patience=2.5 were built
(Lightning's EarlyStopping takes them as given: -1 stops as 0 does, 2.5 after 3 audits)."""

import pytest
from lightning.fabric.utilities.exceptions import MisconfigurationException

from lightning_causal import AuditEarlyStopping


@pytest.mark.parametrize("patience", [-1, 2.5, True, "3"])
def test_a_wrong_patience_is_refused(patience):
    with pytest.raises(MisconfigurationException, match=rf"`patience` to be a non-negative int but got {patience!r}"):
        AuditEarlyStopping("causal/input_effect/top5_share", patience=patience)


def test_zero_patience_is_kept():
    assert AuditEarlyStopping("causal/input_effect/top5_share", patience=0).patience == 0
