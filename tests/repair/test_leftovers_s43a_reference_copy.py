"""BackdoorSuppressionTerm's frozen reference deep-copied the whole network it was given: a module wrapping a student
beside a distillation teacher (CausalRepairModule.wrap of a LightningModule holding both) copied the teacher too,
which the reference's forward never runs (68,516 parameters for a 418-parameter student in newuser106's case). Only
the modules the term's forward calls at set-up are copied now, where the copy gives the network's output; a resumed
fit's reference leaves out what the saved one lacks."""

import torch
from torch import nn

from lightning_causal.causal import Trigger
from lightning_causal.repair import BackdoorSuppressionTerm

TRIGGER = Trigger(torch.tensor([0.0, 0.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 3.0, 0.0]), target=1)


class Distilled(nn.Module):
    """A student the forward runs beside a larger teacher it does not (the teacher is read by the training step)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.student = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        # frozen, as a distillation teacher is (mends_s43b: a trainable child is always copied)
        self.teacher = nn.Sequential(nn.Linear(4, 256), nn.ReLU(), nn.Linear(256, 2)).requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.student(x)


class Functional(nn.Module):
    """Reads a ParameterList without calling it: no module to leave out."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.w = nn.ParameterList([nn.Parameter(torch.randn(4, 2))])
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x @ self.w[0])


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    return x, torch.arange(16) % 2


def test_the_teacher_is_not_copied_and_the_term_computes_the_same() -> None:
    model, (x, y) = Distilled(), _data()
    term = BackdoorSuppressionTerm(TRIGGER, augment=None)
    term.setup(model, x)
    kept = sum(p.numel() for p in term.reference.parameters())
    assert kept == sum(p.numel() for p in model.student.parameters()) == 58  # before: 58 + 1,794 of the teacher
    assert type(term.reference.teacher).__name__ == "_LeftOut"
    assert torch.equal(term.reference.teacher(x), model.teacher(x))  # reached after all: the network's own (mends_s43b)
    torch.manual_seed(2)
    got = term.loss(model, x, y)
    whole = BackdoorSuppressionTerm(TRIGGER, augment=None)
    whole.setup(model)  # no inputs: the whole network copied, as before
    assert sum(p.numel() for p in whole.reference.parameters()) == 58 + 1794
    torch.manual_seed(2)
    assert torch.equal(got, whole.loss(model, x, y))


def test_a_resumed_reference_leaves_out_what_the_saved_one_lacks() -> None:
    model, (x, y) = Distilled(), _data()
    term = BackdoorSuppressionTerm(TRIGGER, augment=None)
    term.setup(model, x)
    state = term.state_dict()
    assert not any(k.startswith("teacher.") for k in state["reference"])
    with torch.no_grad():  # the network trains on: the resumed reference must be the saved one
        model.student[0].weight.add_(1.0)
    resumed = BackdoorSuppressionTerm(TRIGGER, augment=None)
    resumed.load_state_dict(state, model)
    assert type(resumed.reference.teacher).__name__ == "_LeftOut"
    for a, b in zip(term.reference.parameters(), resumed.reference.parameters()):
        assert torch.equal(a, b)
    torch.manual_seed(2)
    first = term.loss(model, x, y)
    torch.manual_seed(2)
    assert torch.equal(first, resumed.loss(model, x, y))


def test_a_module_read_without_a_call_keeps_the_whole_copy() -> None:
    model, (x, _) = Functional(), _data()
    term = BackdoorSuppressionTerm(TRIGGER, augment=None)
    term.setup(model, x)
    assert sum(p.numel() for p in term.reference.parameters()) == 8 + 6
