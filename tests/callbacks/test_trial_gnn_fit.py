"""A GNN in a Lightning fit. The batch is one graph, ``{"x", "edge_index", "y", "train_mask"}``. Read as
the model's arguments (``unpack_batch=lambda b: (b["x"], b["y"], (b["edge_index"],))``), the audits'
2-sample dry run cut the graph to its first 2 nodes and the fit stopped on 'index 2 is out of bounds
for dimension 0 with size 2', naming neither the graph nor a way out; it now stops at set-up saying
that the nodes are linked by forward argument 0 and how to make the graph the sample. Done that way
(docs/recipes.md, 'Graph neural networks'), the input-effect and unit-importance audits of one node
run in the fit and equal float64 brute force of full-graph passes."""

import lightning.pytorch as pl
import pytest
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch.nn import functional as F
from torch.utils.data import DataLoader

from lightning_causal import CausalAuditCallback, InputEffectAudit, UnitImportanceAudit
from tests.helpers.gnn import GCN, GraphAsSample, two_block_graph

NODE = 3


def _graph():
    x, edge_index = two_block_graph()
    y = (x[:, 0] > x[:, 0].median()).long()
    return {"x": x, "edge_index": edge_index, "y": y, "train_mask": torch.arange(16) % 4 != 0}


class _Nodes(pl.LightningModule):
    """What a user writes first: forward(x [num_nodes, F], edge_index)."""

    def __init__(self) -> None:
        super().__init__()
        self.model = GCN().double()

    def forward(self, x, edge_index):
        return self.model(x, edge_index)

    def training_step(self, batch, _):
        m = batch["train_mask"]
        return F.cross_entropy(self(batch["x"], batch["edge_index"])[m], batch["y"][m])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _GraphSample(_Nodes):
    """The recipe: the graph is the sample, forward(x [B, num_nodes, F]) -> [B, num_nodes, C]."""

    def __init__(self, edge_index) -> None:
        super().__init__()
        self.net = GraphAsSample(self.model, edge_index)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        m = batch["train_mask"]
        return F.cross_entropy(self(batch["x"][None])[0][m], batch["y"][m])


def _trainer(callback, root):
    return pl.Trainer(default_root_dir=root, max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, callbacks=[callback], num_sanity_val_steps=0)


def test_nodes_as_samples_stop_at_set_up_naming_the_graph(tmp_path):
    graph = _graph()
    callback = CausalAuditCallback([InputEffectAudit()], unpack_batch=lambda b: (b["x"], b["y"], (b["edge_index"],)),
                                   report_dir=tmp_path)
    with pytest.raises(MisconfigurationException, match=r"Audit 'input_effect' is misconfigured: Expected the model to "
                                                        r"compute each sample's output.*edge_index.*Graph neural networks"):
        _trainer(callback, tmp_path).fit(_Nodes(), DataLoader([graph], batch_size=None), DataLoader([graph], batch_size=None))


def test_the_graph_as_the_sample_audits_a_node_exactly_in_a_fit(tmp_path):
    torch.manual_seed(0)
    graph = _graph()
    n, f = graph["x"].shape
    node = dict(output=lambda out: out[:, NODE], target=1)
    callback = CausalAuditCallback(
        [InputEffectAudit(feature_mask=torch.arange(f).expand(1, n, f), ace_values=None, **node),
         UnitImportanceAudit(["model.conv1"], unit_dim=-1, **node)],
        unpack_batch=lambda b: (b["x"][None], None, None), report_dir=tmp_path)
    module = _GraphSample(graph["edge_index"])
    _trainer(callback, tmp_path).fit(module, DataLoader([graph], batch_size=None), DataLoader([graph], batch_size=None))
    model, x, edge_index = module.model.eval(), graph["x"], graph["edge_index"]
    with torch.no_grad():
        base = model(x, edge_index)[NODE, 1]
        features = torch.stack([base - model(x.index_fill(1, torch.tensor([k]), 0.0), edge_index)[NODE, 1] for k in range(f)])
        channels = []
        for u in range(5):
            h = model.act(model.conv1(x, edge_index))
            h[:, u] = 0.0
            channels.append(base - model.conv2(h, edge_index)[NODE, 1])
    logged = _trainer_metrics(module)
    assert logged["causal/input_effect/max_abs_effect"] == pytest.approx(float(features.abs().max()), rel=1e-6)  # logged as float32
    assert logged["causal/input_effect/mean_abs_effect"] == pytest.approx(float(features.abs().mean()), rel=1e-6)  # logged as float32
    assert logged["causal/unit_importance/model.conv1/top1_importance"] == pytest.approx(
        float(torch.stack(channels).abs().max()), rel=1e-6)  # logged as float32


def _trainer_metrics(module):
    return {k: float(v) for k, v in module.trainer.callback_metrics.items()}
