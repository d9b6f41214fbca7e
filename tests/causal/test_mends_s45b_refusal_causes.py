"""Refusal causes and warnings named right (review_leftovers_s45c findings 1 and 2, review_newuser121 section 4).

1. A capacity-limited mixture of experts that keeps its router's probabilities (``self.router_probs = p.detach()``,
   ``[N, E]``, written every pass, never read in eval) counted as a state sized by the batch, so the whole probe was not
   run reversed: the check passed and ``input_effects`` stopped later naming control flow on a batch statistic, without
   the capacity cause and its ``capacity_factor=None`` way out.
2. A last-position read of outputs with more than one trailing dimension (``o[:, -1].flatten(1)`` of ``[N, T, 2, 3]``)
   was warned of as a mean over the padding, not as a read of a padded position.
3. A graph held in the model got the graph advice twice; a written tensor ``h`` was taken to be the hint's ``x.h``."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.linked_samples import BATCH_HINT, _names_written_state
from lightning_causal.causal.engine.padded_reads import padded_reads
from lightning_causal.causal.engine.sample_independence import (
    PLACE_CAUSE,
    check_samples_independent,
)


class CapacityMoE(nn.Module):
    """Top-1 routing over 3 experts, each taking the first ceil(N / 3) tokens of its queue; the rest pass through."""

    def __init__(self, keep: str = "") -> None:
        super().__init__()
        torch.manual_seed(1)
        self.gate = nn.Linear(4, 3)
        self.experts = nn.ModuleList(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 4)) for _ in range(3))
        self.head = nn.Linear(4, 2)
        self.keep, self.router_probs = keep, None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.gate(x).softmax(-1)
        if self.keep == "read" and self.router_probs is not None and self.router_probs.shape == p.shape:
            p = p + 0.1 * self.router_probs  # a state sized by the batch, read where the size matches
        if self.keep:
            self.router_probs = p.detach()  # for an auxiliary loss in training_step
        chosen = p.argmax(1)
        onehot = nn.functional.one_hot(chosen, 3)
        kept = (onehot.cumsum(0) * onehot).sum(1) - 1 < max(1, math.ceil(x.shape[0] / 3))
        out = x.clone()
        for e, expert in enumerate(self.experts):
            rows = ((chosen == e) & kept).nonzero().flatten()
            out = out.index_add(0, rows, expert(x[rows]))
        return self.head(out)


X8 = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))  # rows alone agree; reversed, [0, 2, 5, 6] differ


@pytest.mark.parametrize("keep", ["", "write"])
def test_capacity_mixture_that_keeps_its_router_probabilities_is_refused_naming_capacity(keep: str) -> None:
    model = CapacityMoE(keep).eval()
    with torch.no_grad():
        out = model(X8)
    with pytest.raises(ValueError, match="in the reverse order") as err:
        check_samples_independent(Forward(model, num_samples=8), (X8,), out, "The analysis")
    assert PLACE_CAUSE in str(err.value) and "probe samples [0, 2, 5, 6]" in str(err.value)


def test_input_effects_names_capacity_and_its_way_out_for_the_kept_probabilities() -> None:
    with pytest.raises(ValueError) as err:
        input_effects(CapacityMoE("write").eval(), X8)
    assert PLACE_CAUSE in str(err.value) and "`capacity_factor=None`" in str(err.value)
    assert "control flow on a batch statistic" not in str(err.value)


def test_state_sized_by_the_batch_and_read_passes_as_before() -> None:
    # read where the size matches: the reversed pass differs by the state the probe's pass left, not only by the places
    model = CapacityMoE("read").eval()
    with torch.no_grad():
        out = model(X8)
    check_samples_independent(Forward(model, num_samples=8), (X8,), out, "The analysis")  # a guard: passes before too


class Extra(nn.Module):
    """Per-position outputs of two trailing dimensions, ``[N, T, 2, 3]``; the mask a forward argument."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.lin = nn.Linear(3, 6)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.lin(x)).view(*x.shape[:2], 2, 3) + 0.1


def test_padded_reads_of_a_position_flattened_or_one_index_of_it() -> None:
    seq = torch.arange(2 * 3 * 2 * 2, dtype=torch.float).view(2, 3, 2, 2)  # [n, T, 2, 2], every entry its own
    pad = torch.tensor([[False, False, True], [False, False, False]])
    assert padded_reads(seq, seq[:, -1].flatten(1), pad) == {0: [2]}
    assert padded_reads(seq, seq[:, -1, 1], pad) == {0: [2]}
    assert padded_reads(seq, seq[:, 1].flatten(1), pad) == {} and padded_reads(seq, seq[:, 1, 0], pad) == {}
    assert padded_reads(seq, seq[:, -1, 0, 0], pad) == {}  # one entry of a position: no comparison of single numbers


@pytest.mark.parametrize(("read", "warned"), [(lambda o: o[:, -1].flatten(1), True), (lambda o: o[:, -1, 0], True),
                                              (lambda o: o[:, 0].flatten(1), False),
                                              # a slice along a trailing dimension (leftovers_s46c: the mean warning before)
                                              (lambda o: o[:, -1, :, 0], True), (lambda o: o[:, -1, :, 2], True),
                                              (lambda o: o[:, 0, :, 0], False)])
def test_last_position_of_outputs_with_two_trailing_dims_is_warned_as_a_padded_read(read, warned: bool) -> None:  # noqa: ANN001
    lengths = torch.tensor([8, 3, 6, 5])
    real = torch.arange(8) < lengths[:, None]
    x = torch.randn(4, 8, 3, generator=torch.Generator().manual_seed(0)) * real[..., None]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        input_effects(Extra().eval(), x, output=read, target=0, additional_forward_args={"attention_mask": real.long()})
    said = [str(w.message) for w in seen if "explained output" in str(w.message)]
    if warned:
        assert len(said) == 1 and "probe sample(s) [1, 2, 3] is the model's output at position(s) [7]" in said[0]
        assert "right padding read at the last position" in said[0] and "a mean (`out.mean(1)`)" not in said[0]
    else:
        assert said == []


class HeldGraph(nn.Module):
    """The nodes of one fixed graph as the rows, its adjacency a buffer of a submodule (``x.adj``, ``x.h``)."""

    def __init__(self, n: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        a = (torch.rand(n, n) < 0.3).float() + torch.eye(n)
        self.x = nn.Module()
        self.x.register_buffer("h", a / a.sum(1, keepdim=True))
        self.lin, self.head = nn.Linear(4, 8), nn.Linear(8, 2)
        self.h = torch.zeros(())  # a call counter, written at every pass, named `h` too

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.h = self.h + 1
        return self.head(torch.relu(self.x.h @ self.lin(x)))


def test_graph_held_in_the_model_is_advised_once() -> None:
    with pytest.raises(ValueError, match="run alone failed where the batch of 16 ran") as err:
        input_effects(HeldGraph().eval(), torch.randn(16, 4))
    said = str(err.value)
    assert "x.h [16, 16]" in said and said.count("make the graph the sample") == 1
    assert said.count("'Graph neural networks'") == 1
    assert BATCH_HINT in said  # the written counter `h` is not the hint's `x.h`: no state the model writes was named


def test_names_written_state_matches_a_name_whole() -> None:
    model, x = HeldGraph().eval(), torch.randn(16, 4)
    assert not _names_written_state(Forward(model), (x,), "that the error names: x.h [16, 16]. Where")
    assert _names_written_state(Forward(model), (x,), "that the error names: h [], x.h [16, 16]. Where")
    assert _names_written_state(Forward(model), (x,), "h [] named")
