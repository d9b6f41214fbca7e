"""Review of b1428412 (trial newuser69): the survival way named by the batch message stays off weighted classifiers.

default_unpack_batch refuses three tensors and, since b1428412, adds for ``(x, time, event)`` (times >= 0 beside 0/1
events) the advice to give the audits no labels. A weighted binary classifier's ``(x, y, w)`` with float labels 0/1 and
uniform weights (all 1) or a 0/1 sample mask matched that test too, and was told 'a time is no class label' and to drop
its labels, which are class labels.
"""

import pytest
import torch

from lightning_causal.batches import default_unpack_batch


def _message(batch: tuple) -> str:
    with pytest.raises(ValueError) as err:
        default_unpack_batch(batch)
    return str(err.value)


@pytest.mark.parametrize("weights", ["ones", "mask"])
def test_a_weighted_binary_classifier_is_not_told_of_survival(weights: str) -> None:
    n = 16
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(0))
    y = (torch.arange(n) % 2).float()  # a binary classifier's float labels (BCE targets)
    w = torch.ones(n) if weights == "ones" else (torch.arange(n) % 3 != 0).float()
    message = _message((x, y, w))
    assert "survival" not in message and "a time is no class label" not in message
    assert "(batch[0], batch[1], None)` for batches (x, y, w)" in message  # the way it keeps its labels


def test_uniform_weights_beside_a_regression_target_are_no_events() -> None:
    n = 16
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(0))
    assert "survival" not in _message((x, torch.rand(n) * 5, torch.ones(n)))


def test_a_censored_survival_batch_is_still_told_the_survival_way() -> None:
    n = 16
    g = torch.Generator().manual_seed(0)
    x, time = torch.randn(n, 3, generator=g), torch.rand(n, generator=g) * 0.9  # times normalised below 1 too
    event = (torch.arange(n) % 4 != 0).float()
    assert "(x, time, event) of a survival model" in _message((x, time, event))
    assert "(x, time, event) of a survival model" in _message((x, time, event.bool()))


def test_time_event_labels_refused_as_classes_name_the_way_without_labels() -> None:
    """Times scaled into [0, 1] (by the longest follow-up) stacked beside the events are kept as class-like labels by
    FairnessAudit and refused as no single class per sample, in the dry run and the full run alike: the refusal named
    only labels of one class per sample, which a survival model has not."""
    from torch import nn

    from lightning_causal import FairnessAudit
    from lightning_causal.audits import Probe
    from lightning_causal.causal import AttributeFlip

    n = 16
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    x[:, 2] = (torch.arange(n) % 2).float()
    labels = torch.stack([torch.rand(n, generator=g) * 0.9 + 0.05, (torch.arange(n) % 3 != 0).float()], 1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).eval()
    for run in (FairnessAudit(AttributeFlip(2)).dry_run, FairnessAudit(AttributeFlip(2)).run):
        with pytest.raises(ValueError, match=r"survival model's \(time, event\).*\(batch\[0\], None, None\)"):
            run(model, Probe(x, labels))
    with pytest.raises(ValueError) as err:  # multi-hot [N, 2] labels keep their words
        FairnessAudit(AttributeFlip(2)).run(model, Probe(x, (torch.rand(n, 2, generator=g) > 0.5).float()))
    assert "survival" not in str(err.value)
