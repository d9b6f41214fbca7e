"""Figure titles named a wrapper's class where the audited model is one (review of leftovers_s45b, 2f982422's
whole_model): an ``audited_module`` returning ``nn.Sequential(net)`` drew "layer causal map of Sequential", a
``torch.compile``'d network "of OptimizedModule", a CausalRepairModule "of CausalRepairModule". The model it holds is
named instead."""

import warnings

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule, LayerMapAudit
from lightning_causal.audits.base import whole_model
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.reporting.graph_figures import layer_map_figure


class Forecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder, self.head = nn.Linear(8, 16), nn.Linear(16, 3)

    def forward(self, x):
        return self.head(torch.relu(self.encoder(x)))


class Holder(pl.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Sequential(Forecaster())

    @property
    def audited_module(self):
        return self.backbone

    def forward(self, x):
        return self.backbone(x)


def test_wrappers_are_looked_through_for_the_model_they_hold():
    assert whole_model(nn.Sequential(Forecaster())) == {"path": "0", "class": "Forecaster"}
    assert whole_model(torch.compile(Forecaster())) is None  # `_orig_mod` dropped (eager.user_name): the labels name the layers as they are
    assert whole_model(CausalRepairModule(Forecaster(), [])) == {"path": "model", "class": "Forecaster"}
    assert whole_model(nn.Sequential(nn.Sequential(Forecaster()))) == {"path": "0.0", "class": "Forecaster"}


def test_an_audited_sequential_is_titled_by_the_model_it_holds():
    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(1))
    data = DataLoader(TensorDataset(x, torch.randint(0, 3, (32,))), batch_size=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (result,) = audit_model(Holder(), [LayerMapAudit(target=0)], data, probe_size=32)
    title = layer_map_figure(result.graphs["layer_map"])._suptitle.get_text()
    assert title.startswith("layer causal map of Forecaster: "), title  # was "... of Sequential: "
