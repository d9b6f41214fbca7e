"""A probe of as many sequences as it has positions (16 sentences padded to 16 tokens) has an
``attention_mask`` ``[N, N]``: linked_arguments read it as a graph's dense adjacency, so every
input_effects call ran an extra reversed pass of the whole probe, and a model error got the graph
note: the row-count error of per-token scores ``[N * T, C]`` lost its ``output=`` advice for 'the
rows are no samples (nodes of graphs pooled per graph?)'. A padding argument (an ``attention_mask``
or ``lengths`` keyword, or a positional argument bound to that name) is no adjacency."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.forward import ForwardArgs
from lightning_causal.causal.engine.linked_samples import GRAPH_HINT, linked_arguments


class Tagger(nn.Module):
    """Per-token scores flattened to ``[N * T, 3]`` (a tagger whose output needs ``output=``)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb, self.fc = nn.Embedding(30, 4), nn.Linear(4, 3)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return (self.fc(self.emb(ids)) * attention_mask[..., None]).reshape(-1, 3)


def _probe(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(1, 30, (n, n), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(n, n, dtype=torch.long)
    mask[:, -3:] = 0
    return ids, mask


def test_a_square_attention_mask_is_no_adjacency() -> None:
    ids, mask = _probe(12)
    assert linked_arguments(ForwardArgs({"attention_mask": mask}, num_samples=12)) == []
    assert linked_arguments(ForwardArgs((mask,), num_samples=12), model=Tagger(), num_inputs=1) == []
    # a dense adjacency [N, N] under another name is still one
    assert len(linked_arguments(ForwardArgs({"adj": torch.ones(12, 12)}, num_samples=12))) == 1
    assert len(linked_arguments(ForwardArgs((torch.ones(12, 12),), num_samples=12))) == 1


@pytest.mark.parametrize("positional", [False, True])
def test_the_row_count_error_of_a_square_probe_keeps_its_output_advice(positional: bool) -> None:
    ids, mask = _probe(12)
    with pytest.raises(ValueError, match="one row per input row") as err:
        input_effects(Tagger().eval(), ids, baseline=0,
                      additional_forward_args=(mask,) if positional else {"attention_mask": mask})
    assert "out.view(-1, T, C)" in str(err.value) and GRAPH_HINT not in str(err.value)


def test_a_square_probe_s_effects_equal_a_do_loop() -> None:
    torch.manual_seed(0)
    ids, mask = _probe(12)
    model = Tagger().eval().double()
    out = lambda o: o.view(-1, 12, 3)[:, 0]  # noqa: E731 - the first token's scores
    got = input_effects(model, ids, baseline=0, additional_forward_args={"attention_mask": mask}, output=out)
    with torch.no_grad():
        f = out(model(ids, mask))
        t = f.argmax(1, keepdim=True)
        want = torch.stack([(f - out(model(ids.index_fill(1, torch.tensor([j]), 0), mask))).gather(1, t)[:, 0]
                            if bool(mask[0, j]) else torch.zeros(12, dtype=f.dtype) for j in range(12)], 1)
    torch.testing.assert_close(got, want)
