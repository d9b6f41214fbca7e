"""aa878fd8 left out of BackdoorSuppressionTerm's frozen reference every module its forward did not call on the first
two training inputs: a mixture of experts routing each row to one expert (sparse dispatch, ``if mask.any()``) lost the
experts those two rows were not routed to, and the term's first step failed ('left out experts.1'), where the whole
copy trained; `setup_inputs=` could not reach them (two rows were tried whatever the inputs). Now every training input
is tried, and only children of the network that no pass calls are left out (a teacher beside the student), never a
module inside a child called."""

import torch
from torch import nn

from lightning_causal.causal import Trigger
from lightning_causal.repair import BackdoorSuppressionTerm

TRIGGER = Trigger(torch.tensor([0.0, 0.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 3.0, 0.0]), target=1)


class Routed(nn.Module):
    """Each row runs the expert its gate picks; a rare head runs only on rows whose x0 is above 2; a teacher never."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.gate = nn.Linear(4, 4)
        self.experts = nn.ModuleList(nn.Linear(4, 2) for _ in range(4))
        self.rare = nn.Linear(4, 2)
        self.teacher = nn.Linear(4, 2).requires_grad_(False)  # frozen (mends_s43b: a trainable child is copied)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        route, out = self.gate(x).argmax(1), x.new_zeros(x.shape[0], 2)
        for i, expert in enumerate(self.experts):
            if (rows := route == i).any():
                out[rows] = expert(x[rows])
        if (rows := x[:, 0] > 2).any():
            out[rows] = out[rows] + self.rare(x[rows])
        return out


def test_experts_and_a_head_of_some_rows_are_copied_the_teacher_is_not() -> None:
    model = Routed()
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
    x[10, 0] = 3.0  # one row past the first two reaches the rare head
    y = torch.arange(64) % 2
    assert model.gate(x[:2]).argmax(1).tolist() == [3, 0] and 2 not in model.gate(x).argmax(1).tolist()
    term = BackdoorSuppressionTerm(TRIGGER, augment=None)
    term.setup(model, x)
    kinds = {name: type(m).__name__ for name, m in term.reference.named_children()}
    assert kinds["teacher"] == "_LeftOut" and kinds["rare"] == "Linear"  # before: rare, experts.1 and experts.2 left out
    assert all(type(e).__name__ == "Linear" for e in term.reference.experts)  # expert 2 too, which no row reaches here
    torch.manual_seed(2)
    got = term.loss(model, x, y)  # before: RuntimeError "left out 'experts.1'"
    whole = BackdoorSuppressionTerm(TRIGGER, augment=None)
    whole.setup(model)  # no inputs: the whole network copied
    torch.manual_seed(2)
    assert torch.equal(got, whole.loss(model, x, y))
