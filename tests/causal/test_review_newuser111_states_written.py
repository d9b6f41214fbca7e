"""A mixture of experts keeps what it computes for logging on the module, written at every pass and never read: its
auxiliary loss (``self.l_aux``), its experts' token counts (``self.exp_counts``, int64, as DeepSpeed's MOELayer keeps
them) or a dict of statistics (``self.metadata[...]``, as fairseq's). The probe check's refusal of its capacity limit
named the int counts and the dict's entry as "a state it keeps from earlier calls" (only floating attributes were tried
unread), whose way out changes nothing; a state the forward reads (an int class read back from a dict) stays named."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.sample_independence import _states_read


class _LoggingMixture(nn.Module):
    """Top-1 routing over 2 experts by the larger of features 0 and 1, capacity ceil(N / 2) tokens an expert (the last
    in a queue dropped through the residual); ``reads=True``: the previous pass's classes, kept in a dict, are read back
    where the batch size matches (a state carried across batches)."""

    def __init__(self, reads: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.experts = nn.ModuleList(nn.Linear(3, 3) for _ in range(2))
        self.head, self.emb = nn.Linear(3, 2), nn.Embedding(2, 2)
        self.reads, self.metadata, self.state = reads, {}, {}

    def forward(self, x):
        choice = (x[:, 1] > x[:, 0]).long()
        onehot = nn.functional.one_hot(choice, 2)
        keep = (onehot.cumsum(0) * onehot).sum(1) - 1 < math.ceil(x.shape[0] / 2)
        out = x.clone()
        for e, expert in enumerate(self.experts):
            rows = ((choice == e) & keep).nonzero().flatten()
            out = out.index_add(0, rows, expert(x[rows]))
        logits = self.head(out)
        prev = self.state.get("prev")
        if self.reads and prev is not None and prev.shape[0] == x.shape[0]:
            logits = logits + self.emb(prev)
        self.l_aux = 2 * (onehot.float().mean(0) ** 2).sum()  # written, never read
        self.exp_counts = onehot.sum(0)  # int64
        self.metadata["dropped"] = (~keep).sum()  # int64 in a dict
        self.state["prev"] = logits.argmax(-1)
        return logits


def _probe() -> torch.Tensor:  # rows 0 and 1 alone: capacity 1, row 1 dropped; in the batch of 4 (capacity 2) kept
    a, b = torch.tensor([1.0, 0.0, 0.5]), torch.tensor([0.0, 1.0, -0.5])
    return torch.stack([a, a, b, b]) + 0.1 * torch.arange(4.0)[:, None]


def test_int_counts_and_dict_entries_only_written_are_not_named_as_states_carried_across_batches():
    with pytest.raises(ValueError, match=r"probe samples \[1\] run alone differ .*: its forward depends on the batch "
                                         r"\(.*a mixture of experts' capacity limit") as err:
        input_effects(_LoggingMixture().eval(), _probe())
    assert "reads a state" not in str(err.value)


def test_an_int_state_read_back_from_a_dict_stays_named():
    model = _LoggingMixture(reads=True).eval()
    with torch.no_grad():
        model(_probe()[:2])  # a pass before: its 2 classes kept, read by the check's passes of 2 rows
    prev, value = model.state["prev"], model.state["prev"].clone()
    with pytest.raises(ValueError, match=r"reads a state it keeps from earlier calls: .*state\['prev'\]"):
        input_effects(model, _probe())
    assert model.state["prev"] is prev and torch.equal(prev, value)  # put back, not the value tried


def test_the_state_tried_another_value_is_put_back_the_very_tensor():
    """``_states_read`` runs the rows once more with the state another value; the state the pass before left is put
    back (the very tensor, its value), for the check's passes after it; the audit's own restore at its end hid a lost
    put-back from the test above."""
    model, x, rows = _LoggingMixture(reads=True).eval(), _probe(), torch.tensor([0, 1])
    forward = Forward(model)
    with torch.no_grad():
        model(x[:2])
        alone = forward(x[rows], rows=rows)  # reads the 2 classes kept, keeps its own
    prev, value = model.state["prev"], model.state["prev"].clone()
    _states_read(forward, (x,), rows, alone, ["state['prev']"])  # one pass with prev's values swapped
    assert model.state["prev"] is prev and torch.equal(model.state["prev"], value)
