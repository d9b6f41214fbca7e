"""A model held as ``self.net`` of a LightningModule drew its causal-graph and layer-map figures titled "... of net"
(session 44, 7b4cd7e2's titles name the path the labels leave out): ``net`` tells a user nothing. Where that path holds
the whole model, the titles now name the model's class; a tower of a two-tower model is still named by its path."""

import warnings

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalGraphAudit, LayerMapAudit
from lightning_causal.audits.base import whole_model
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.reporting.figure_style import left_out_prefix
from lightning_causal.reporting.graph_figures import graph_figure, layer_map_figure


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder, self.hidden, self.head = nn.Linear(8, 16), nn.Linear(16, 16), nn.Linear(16, 3)

    def forward(self, x):
        return self.head(torch.relu(self.hidden(torch.relu(self.encoder(x)))))


class Forecaster(pl.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net, self.loss = _Net(), nn.CrossEntropyLoss()

    def forward(self, x):
        return self.net(x)


class _TwoTowers(nn.Module):
    def __init__(self):
        super().__init__()
        self.image, self.text = _Net(), _Net()


def test_a_model_held_as_self_net_is_titled_by_its_class():
    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(1))
    data = DataLoader(TensorDataset(x, torch.randint(0, 3, (32,))), batch_size=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = audit_model(Forecaster(), [LayerMapAudit(target=0), CausalGraphAudit(layers=["net.encoder", "net.hidden"], target=0)],
                              data, probe_size=32)
    graphs = {r.audit: r.graphs for r in results}
    title = layer_map_figure(graphs["layer_map"]["layer_map"])._suptitle.get_text()
    assert title.startswith("layer causal map of Forecaster: "), title  # was "layer causal map of net: ..."
    title = graph_figure(graphs["causal_graph"]["causal_graph"]).axes[0].get_title()
    assert title.startswith("causal graph of Forecaster:"), title  # a title too wide for its figure breaks after the colon


def test_the_whole_model_is_found_below_wrappers_and_not_in_a_tower():
    assert whole_model(Forecaster()) == {"path": "net", "class": "Forecaster"}
    assert whole_model(_TwoTowers()) is None  # "causal graph of image" stays: the other tower is text
    assert whole_model(_Net()) is None  # parameters in several children: the labels name them
    deeper = {"path": "net.body", "class": "Forecaster"}  # net holds one body, which holds every parameter
    assert left_out_prefix(["net.encoder", "net.head"], whole=deeper) == "Forecaster"
    assert left_out_prefix(["net.body.encoder", "net.body.head"], whole=deeper) == "Forecaster"
    assert left_out_prefix(["image.encoder", "image.head"], whole=None) == "image"
    assert left_out_prefix(["netx.encoder", "netx.head"], whole={"path": "net", "class": "Forecaster"}) == "netx"
