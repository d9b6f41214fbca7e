"""A Python list of batches given as the probe (``audit_model(model, audits, [(x1, y1), (x2, y2)])``) is one batch under
the default convention: the refusal says how to read its batches in turn, names no callback when ``audit_model`` read
it, and the advice works (the same samples as the batches concatenated)."""

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal import InputEffectAudit, audit_model
from lightning_causal.callbacks._probe import probe_from


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(4, 3, generator=g), torch.randint(0, 2, (4,), generator=g)) for _ in range(3)]


def test_a_list_of_batches_is_refused_naming_a_loader_of_batches():
    with pytest.raises(MisconfigurationException) as info:
        audit_model(nn.Linear(3, 2), [InputEffectAudit(ace_values=None)], _batches())
    message = str(info.value)
    assert message.startswith("The audits cannot read the probe batch: ")
    assert "a list of batches is read as one batch" in message and "DataLoader(batches, batch_size=None)" in message


def test_the_advice_reads_the_batches_in_turn():
    batches = _batches()
    probe = probe_from(DataLoader(batches, batch_size=None), 10)
    assert torch.equal(probe.first, torch.cat([x for x, _ in batches])[:10])
    assert torch.equal(probe.labels, torch.cat([y for _, y in batches])[:10])


def test_three_tensors_keep_their_own_advice():
    x, y = _batches()[0]
    with pytest.raises(MisconfigurationException, match=r"for batches \(x, y, w\)") as info:
        probe_from([x, y, torch.ones(4)], 4)
    assert "list of batches" not in str(info.value)
