"""docs/recipes.md, 'Graph neural networks', many small graphs: the `PaddedGraphs` wrapper names its node mask
`attention_mask`, so that padded nodes are padding. Named `node_mask` (the recipe before), the padded slots counted as
nodes of no effect: a slot that is a node in few graphs got a mean effect diluted by the others (here 4 times smaller: one graph of 4 holds it),
silently. The per-slot summaries now average the graphs that hold the node, equal to a hand loop."""

import re
from pathlib import Path

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe

RECIPES = (Path(__file__).parent.parent / "docs" / "recipes.md").read_text()


def _padded_graphs() -> type:
    block = next(b for b in re.findall(r"```python\n(.*?)```", RECIPES, re.S) if "class PaddedGraphs" in b)
    ns: dict = {"torch": torch, "nn": nn}
    exec(compile(block, "<recipes.md: padded graphs>", "exec"), ns)  # noqa: S102 - the docs' own example
    return ns["PaddedGraphs"]


class MeanPool(nn.Module):  # model(x, edge_index, batch) -> [num_graphs, 2]: a neighbour sum, a mean per graph
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x, edge_index, batch):
        h = x + torch.zeros_like(x).index_add_(0, edge_index[1], x[edge_index[0]])
        num = int(batch.max()) + 1
        total = torch.zeros(num, 3).index_add_(0, batch, h)
        count = torch.zeros(num).index_add_(0, batch, torch.ones(len(batch)))
        return self.lin(total / count[:, None])


def test_padded_slots_are_left_out_of_the_node_summaries():
    torch.manual_seed(0)
    sizes = torch.tensor([2, 2, 2, 4])  # slots 2 and 3 are nodes of the last graph only
    mask = torch.arange(4)[None] < sizes[:, None]
    x = torch.randn(4, 4, 3) * mask[..., None]
    chain = torch.diag(torch.ones(3), 1)
    adj = (chain + chain.T).expand(4, 4, 4).clone()
    model = _padded_graphs()(MeanPool()).eval()
    slots = torch.arange(4)[:, None].expand(1, 4, 3)
    result = InputEffectAudit(feature_mask=slots, target=1, ace_values=None).run(model, Probe(x, None, (adj, mask)))
    hand = torch.zeros(4, 4)
    with torch.no_grad():
        clean = model(x, adj, mask)[:, 1]
        for j in range(4):
            cut = x.clone()
            cut[:, j] = 0.0
            hand[:, j] = clean - model(cut, adj, mask)[:, 1]
    per_slot = torch.stack([hand[mask[:, j], j].abs().mean() for j in range(4)])  # over the graphs holding slot j
    torch.testing.assert_close(torch.tensor(result.vectors["mean_abs_effect"]).float(), per_slot, rtol=0, atol=1e-5)
    assert per_slot[3] > 0
