"""Session 45, final read B45 F1: the causal graph's title named the package's own ``LightningClassifier`` wrapper
(29ef5b84 looked through other wrappers only) and, 75 characters long, ran past both edges of a three-column figure
(``usal graph of LightningClassifier: 16 nodes, 44 edges, faithfulness 0.``). The title now names the model the wrapper
holds, and a long class name wraps inside the figure."""
import warnings

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalGraphAudit
from lightning_causal._lightning_classifier import LightningClassifier
from lightning_causal.audits.base import whole_model
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.reporting.graph_figures import graph_figure


class AVeryLongModelClassNameOf28C(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.encoder, self.hidden, self.head = nn.Linear(8, 16), nn.Linear(16, 16), nn.Linear(16, 3)

    def forward(self, x):
        return self.head(torch.relu(self.hidden(torch.relu(self.encoder(x)))))


def test_the_package_wrapper_names_the_model_it_holds():
    assert whole_model(LightningClassifier(AVeryLongModelClassNameOf28C()))["class"] == "AVeryLongModelClassNameOf28C"


def test_a_long_class_name_stays_inside_the_figure():
    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(1))
    data = DataLoader(TensorDataset(x, torch.randint(0, 3, (32,))), batch_size=32)
    model = LightningClassifier(AVeryLongModelClassNameOf28C())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (result,) = audit_model(model, [CausalGraphAudit(layers=["model.encoder", "model.hidden"], target=0)], data,
                                probe_size=32)
    fig = graph_figure(result.graphs["causal_graph"])
    fig.canvas.draw()
    title = fig.axes[0].title
    box = title.get_window_extent(fig.canvas.get_renderer())
    assert title.get_text().startswith("causal graph of AVeryLongModelClassNameOf28C:"), title.get_text()
    assert 0 <= box.x0 and box.x1 <= fig.get_size_inches()[0] * fig.dpi, (box.x0, box.x1)
