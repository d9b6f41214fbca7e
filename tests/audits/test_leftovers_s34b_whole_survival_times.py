"""Survival times in whole units (days as integers) got no survival hint: ``batches.time_event`` read float times only,
so an ``(x, days, event)`` batch was told the ``(x, y, w)`` way alone, which passes the days as class labels, and
stacked integer ``(time, event)`` labels were refused as no class per sample without the way out. Integer times cannot
be told from class labels beside a 0/1 sample mask, so the hint names them with an "if"; float labels and uniform
weights stay silent as 97ee1bd4 made them."""

import pytest
import torch

from lightning_causal.batches import default_unpack_batch


def _message(batch: tuple) -> str:
    with pytest.raises(ValueError) as err:
        default_unpack_batch(batch)
    return str(err.value)


def _days(n: int) -> torch.Tensor:
    return torch.randint(1, 2000, (n,), generator=torch.Generator().manual_seed(0))


def test_whole_unit_times_beside_censored_events_are_told_the_survival_way() -> None:
    n = 16
    x, event = torch.randn(n, 3), (torch.arange(n) % 4 != 0).long()
    message = _message((x, _days(n), event))
    assert "if batch[1] holds a survival model's times in whole units (days)" in message
    assert "`unpack_batch=lambda batch: (batch[0], None, None)`" in message


def test_integer_labels_beside_uniform_weights_are_not() -> None:
    n = 16
    assert "survival" not in _message((torch.randn(n, 3), torch.arange(n) % 5, torch.ones(n)))


def fairness_on_stacked_whole_days(match: str) -> None:
    """A FairnessAudit given stacked [N, 2] (days, event) labels of whole days: refused with ``match``."""
    from torch import nn

    from lightning_causal import FairnessAudit
    from lightning_causal.audits import Probe
    from lightning_causal.causal import AttributeFlip

    n = 16
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(1))
    x[:, 2] = (torch.arange(n) % 2).float()
    labels = torch.stack([_days(n), (torch.arange(n) % 3 != 0).long()], 1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).eval()
    with pytest.raises(ValueError, match=match):
        FairnessAudit(AttributeFlip(2)).run(model, Probe(x, labels))


def test_stacked_whole_unit_time_event_labels_name_the_way_without_labels() -> None:
    fairness_on_stacked_whole_days(r"if these rows are a survival model's \(time, event\).*\(batch\[0\], None, None\)")
