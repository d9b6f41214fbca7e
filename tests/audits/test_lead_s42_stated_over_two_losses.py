"""A repair module stating ``task_loss=nn.BCEWithLogitsLoss()`` around a network that holds an auxiliary
``nn.MSELoss`` held losses of two kinds, and ``label_task`` answered None for it (the stated loss ignored), so an audit
of the repair module compared a softmax where the network alone, read through its own loss, was refused (final read F
F1). The stated task loss decides between held losses of two kinds; nothing stated stays None."""

from torch import nn

from lightning_causal.audits.label_task import label_task
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CausalRepairModule, CounterfactualFairnessTerm


class _Tagger(nn.Module):  # a multi-label tagger with an auxiliary consistency loss beside its task loss
    def __init__(self):
        super().__init__()
        self.fc, self.consistency = nn.Linear(4, 3), nn.MSELoss()

    def forward(self, x):
        return self.fc(x)


def test_the_stated_loss_decides_between_held_losses_of_two_kinds():
    for loss, task in ((nn.BCEWithLogitsLoss(), "multilabel"), (nn.CrossEntropyLoss(), "multiclass")):
        net = _Tagger()
        module = CausalRepairModule(net, [CounterfactualFairnessTerm(AttributeFlip(0))], task_loss=loss)
        assert label_task(module) == task


def test_nothing_stated_stays_none():
    net = _Tagger()
    net.bce = nn.BCEWithLogitsLoss()
    assert label_task(net) is None
