"""``BackdoorSuppressionTerm``'s causal-path penalty on suspect units of a backbone that the model calls several times
per forward pass (a new user's test-time-augmentation wrapper: the backbone's logits averaged over flips of the input).

Before: the term captured the suspect layer with ``capture``, which keeps the last call's output, so the penalty held
the suspect units still on the last view only (a warning about ``capture``, a function the user never called, was all
that was said), while ``BackdoorAudit`` and ``unit_effects`` find the units by setting them at every call: where the
trigger reached the units through the first view only, the penalty was 0 and fine-tuning left the path as it was. Now
the penalty is the mean over the calls of each call's shift, the plain penalty for a layer called once, without the
warning; a call that returns other rows than the stamped batch (a block repeated on the rows not yet halted) is refused.
"""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorSuppressionTerm
from lightning_causal.causal.backdoor.triggers import Trigger
from tests.helpers.backdoor import hand_units_shift


class _Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 6)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x.flatten(1))))


class _TTA(nn.Module):
    """Logits averaged over views of the input; ``views`` picks them."""

    def __init__(self, views: str = "flip") -> None:
        super().__init__()
        self.backbone = _Backbone()
        self.views = views

    def forward(self, x):
        if self.views == "one":
            return self.backbone(x)
        if self.views == "halting":  # the second call on the first half of the rows only
            return torch.cat([self.backbone(x[: len(x) // 2]), self.backbone(x[len(x) // 2 :])]) + self.backbone(x)
        second = x.flip(-1) if self.views == "flip" else torch.zeros_like(x)  # "blank": a view the trigger never reaches
        return (self.backbone(x) + self.backbone(second)) / 2


def _term() -> BackdoorSuppressionTerm:
    mask = torch.zeros(1, 4, 4)
    mask[:, 3:, 3:] = 1
    return BackdoorSuppressionTerm(trigger=Trigger(mask, 1.0, 0), suspects={"backbone.fc1": [0, 1, 2]}, path="units",
                                   unlearn_weight=0.0, distill_weight=0.0, augment=None)


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(8, 1, 4, 4, generator=g), torch.randint(0, 3, (8,), generator=g)


def _hand_penalty(model: _TTA, term: BackdoorSuppressionTerm, x: torch.Tensor) -> torch.Tensor:
    """Each call's mean squared shift of the suspect units between the clean and the stamped rows (scaled by their
    variance), averaged over calls."""
    stamped = term.stamp(x)
    views = (lambda v: v, lambda v: v.flip(-1)) if model.views == "flip" else (lambda v: v, torch.zeros_like)
    shifts = [hand_units_shift(model.backbone.fc1(view(stamped).flatten(1))[:, :3], model.backbone.fc1(view(x).flatten(1))[:, :3])
              for view in views]
    return torch.stack(shifts).mean()


@pytest.mark.parametrize("views", ["flip", "blank"])
def test_the_penalty_holds_the_suspect_units_at_every_call(views):
    torch.manual_seed(0)
    model = _TTA(views)
    term = _term()
    x, y = _batch()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no word about `capture`'s last call
        loss = term.loss(model, x, y)
    want = _hand_penalty(model, term, x)
    assert float(want.detach()) > 0
    torch.testing.assert_close(loss / term.path_weight, want)
    loss.backward()
    assert float(model.backbone.fc1.weight.grad.abs().sum()) > 0


def test_a_layer_called_once_gives_the_plain_penalty():
    torch.manual_seed(0)
    model = _TTA("one")
    term = _term()
    x, y = _batch()
    loss = term.loss(model, x, y)
    stamped = term.stamp(x)
    fc1 = model.backbone.fc1
    want = hand_units_shift(fc1(stamped.flatten(1))[:, :3], fc1(x.flatten(1))[:, :3])
    torch.testing.assert_close(loss / term.path_weight, want)


def test_a_call_on_other_rows_is_refused_naming_the_layer():
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"suspect layer 'backbone.fc1'.*\(16\).*3 times.*call 1 returned 8 rows.*"
                                         r"nn.Identity.*path='logit'"):
        _term().loss(_TTA("halting"), *_batch())
