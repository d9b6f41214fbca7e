"""BackdoorSuppressionTerm's checkpoint state saved each left-out child's fingerprint (``_LeftOut._print``, a tensor
attribute of the placeholder, found by ``held_tensors``) under ``reference_held``, though a resumed placeholder takes
none (it is ignored on load). It now saves only the tensors a resumed reference takes; a resumed fit gives the weights
of the fit never interrupted, bit for bit. A read-only table kept as a plain attribute is still saved (the term cannot
tell it from a memory bank not yet written); registered as a non-persistent buffer it is in no checkpoint and the
resumed reference holds the network's (task leftovers_s45a)."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from lightning_causal.causal import Trigger
from lightning_causal.repair import BackdoorSuppressionTerm

TRIGGER = Trigger(torch.tensor([0.0, 0.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 3.0, 0.0]), target=1)


class _Distilled(nn.Module):
    """A student run beside a frozen teacher its forward never calls (left out of the reference), and a fixed table the
    forward reads (``table``: a plain attribute; ``buffer``: a non-persistent buffer)."""

    def __init__(self, table: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.student = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        self.teacher = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2)).requires_grad_(False)
        fixed = torch.linspace(-1.0, 1.0, 200 * 200).reshape(200, 200)  # the same at every construction
        if table == "buffer":
            self.register_buffer("table", fixed, persistent=False)
        else:
            self.table = fixed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.student(x) + self.table[:2, :2].sum(0)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    return x, torch.arange(16) % 2


def _steps(model: nn.Module, term: BackdoorSuppressionTerm, opt: torch.optim.Optimizer, steps: range) -> None:
    x, y = _data()
    for step in steps:
        torch.manual_seed(100 + step)
        opt.zero_grad()
        term.loss(model, x, y).backward()
        opt.step()


def _saved(state: dict) -> tuple[dict, int]:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    size = buffer.tell()
    buffer.seek(0)
    return torch.load(buffer, weights_only=True), size


@pytest.mark.parametrize("table", ["table", "buffer"])
def test_a_resumed_fit_gives_the_uninterrupted_weights(table: str) -> None:
    x, _ = _data()
    model = _Distilled(table)
    term = BackdoorSuppressionTerm(TRIGGER, augment=None)
    term.setup(model, x)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _steps(model, term, opt, range(2))
    state, size = _saved({"term": term.state_dict(), "model": model.state_dict(), "opt": opt.state_dict()})
    assert type(term.reference.teacher).__name__ == "_LeftOut"
    # no fingerprint of the teacher; the plain table saved (160 kB), the non-persistent buffer in neither
    assert sorted(state["term"]["reference_held"]) == (["table"] if table == "table" else [])
    assert ("table" in state["term"]["reference"]) is False and ("table" in state["model"]) is False
    assert (size > 160_000) is (table == "table")
    _steps(model, term, opt, range(2, 4))

    resumed_model = _Distilled(table)
    resumed_model.load_state_dict(state["model"])
    resumed = BackdoorSuppressionTerm(TRIGGER, augment=None)
    resumed.load_state_dict(state["term"], resumed_model)
    resumed_opt = torch.optim.SGD(resumed_model.parameters(), lr=0.1, momentum=0.9)
    resumed_opt.load_state_dict(state["opt"])
    _steps(resumed_model, resumed, resumed_opt, range(2, 4))
    for (name, a), b in zip(model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name
