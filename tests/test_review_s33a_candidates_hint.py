"""A CLIP-like two-tower model given one fixed set of candidates passed whole (`mark_whole`: 4 class prompts) and
explained through `output=lambda s: s.diagonal()[:, None]` reads row i against candidate i. Where the candidates are as
many as the probe's samples the reordered-rows refusal named that slip (8843ba5c, 161f4e3b); with 4 prompts and a probe
of 12 (the usual case) the refusal spoke of graphs, the prompts as an `edge_index` linking the rows, and with a probe
of 3 too. Both now name the candidates passed whole and `target=` (review of 8843ba5c)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.forward_args import mark_whole


class TwoTower(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.image = nn.Sequential(nn.Flatten(), nn.Linear(16, 6))
        self.embed = nn.Embedding(7, 6)

    def forward(self, pixels, input_ids, attention_mask):
        m = attention_mask[..., None].float()
        text = F.normalize((self.embed(input_ids) * m).sum(1) / m.sum(1), dim=-1)
        return 5.0 * F.normalize(self.image(pixels), dim=-1) @ text.T


PROMPTS = torch.tensor([[1, 2], [1, 3], [1, 4], [1, 5]]), torch.ones(4, 2, dtype=torch.long)
GROUPS = torch.arange(4).repeat_interleave(4).view(1, 4, 4)


@pytest.mark.parametrize("samples", [12, 3])  # more samples than prompts, and fewer
def test_diagonal_against_fewer_or_more_candidates_is_named(samples):
    x = torch.rand(samples, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError) as err:
        input_effects(TwoTower().eval(), x, GROUPS, output=lambda s: s.diagonal()[:, None],
                      additional_forward_args=mark_whole(PROMPTS, [0, 1]))
    text = str(err.value)
    assert f"against 4 candidates passed whole (the output is [{samples}, 4]" in text
    assert "`s.diagonal()` pairs row i with candidate i" in text and "its class for class prompts" in text
    graph = text.find("edge_index")
    assert graph == -1 or text.index("candidates passed whole") < graph  # named before any graph words


def test_the_way_out_runs():
    x = torch.rand(12, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    classes = torch.arange(12) % 4
    m = TwoTower().eval()
    got = input_effects(m, x, GROUPS, output=lambda s: s.log_softmax(1), target=classes,
                        additional_forward_args=mark_whole(PROMPTS, [0, 1]))
    with torch.no_grad():
        def f(v):
            return m(v, *PROMPTS).log_softmax(1).gather(1, classes[:, None])[:, 0]
        hand = torch.stack([f(x) - f(torch.where(GROUPS == g, torch.zeros(()), x)) for g in range(4)], 1)
    torch.testing.assert_close(got, hand, atol=1e-5, rtol=0)


def test_no_hint_without_candidates():
    from lightning_causal.causal.engine.forward import Forward
    from lightning_causal.causal.engine.in_batch_scores import place_paired_hint

    x = torch.rand(5, 1, 4, 4)
    rows = Forward(TwoTower().eval(), output=lambda s: s.diagonal()[:, None], additional_forward_args=PROMPTS,
                   num_samples=5)  # whole by their shape only: no mark, no candidates named (a GNN's edge_index [2, E] is)
    assert place_paired_hint(rows, (x,)) == ""
