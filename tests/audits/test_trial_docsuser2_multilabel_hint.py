"""A multi-label model (its loss says so) whose probe rows each hold one label is refused by the
class-label audits with the way out named (docs/your_model.md, 'Multi-label classifiers'): the
probe's labels are multi-label whatever the rows hold, so the hint must follow the model's task."""

import pytest
import torch
from torch import nn

from lightning_causal import CounterfactualAudit, FairnessAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import AttributeFlip


class _Tagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.loss = nn.BCEWithLogitsLoss()  # says: each output its own sigmoid decision

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def _probe() -> Probe:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(6, 4, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()
    one_label_each = torch.eye(3)[torch.tensor([0, 1, 2, 0, 1, 2])]  # multi-hot labels that happen to hold one 1 per row
    return Probe(x, one_label_each)


@pytest.mark.parametrize(
    ("audit", "hint"),
    [
        (FairnessAudit(AttributeFlip(0)), "output=lambda out: out[:, [k]]"),
        (CounterfactualAudit(), "output=lambda out: torch.cat([-out[:, [k]], out[:, [k]]], 1)"),
    ],
)
def test_a_multi_label_models_one_label_rows_get_the_binary_hint(audit, hint):
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="one class label per probe sample") as err:
        audit.run(_Tagger().eval(), _probe())
    assert hint in str(err.value) and "y[:, k].long()" in str(err.value)


def test_a_model_that_says_nothing_gets_no_multi_label_hint_for_one_hot_rows():
    """One-hot rows of a model that says nothing are read as a softmax classifier's, one class per
    sample (with the warning that names how to say multi-label): the audit runs on their argmax
    (docs/your_model.md, 'Soft labels'; it refused them before, without the multi-label advice)."""
    model, probe = nn.Linear(4, 3).eval(), _probe()
    with pytest.warns(UserWarning, match="read as one class per sample"):
        r = FairnessAudit(AttributeFlip(0)).run(model, probe)
    hard = FairnessAudit(AttributeFlip(0)).run(model, Probe(probe.first, probe.labels.argmax(1)))
    assert r.scalars == pytest.approx(hard.scalars, nan_ok=True)
