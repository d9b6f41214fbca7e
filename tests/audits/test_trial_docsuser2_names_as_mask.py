"""``LayerMapAudit(["l1"])`` (as ``UnitImportanceAudit(["l1"])`` and ``CausalGraphAudit(["l1"])`` are
written) puts the layer names in ``feature_mask``, the first positional parameter, and was refused
with a bare 'Expected argument `feature_mask` to be an integer tensor but got list'. The error now
says the names belong to ``layers=`` (or ``feature_names=``)."""

import pytest

from lightning_causal import InputEffectAudit, LayerMapAudit


@pytest.mark.parametrize("audit", [LayerMapAudit, InputEffectAudit])
def test_names_given_as_the_mask_are_pointed_to_their_keyword(audit):
    with pytest.raises(TypeError, match=r"a list of names is no mask .*`layers=\[\.\.\.\]`.*`feature_names=\[\.\.\.\]`"):
        audit(["net.1", "net.3"])


def test_another_wrong_mask_keeps_the_plain_message():
    with pytest.raises(TypeError, match=r"integer tensor but got list$"):
        LayerMapAudit([[0, 1]])
