"""A model whose BatchNorm keeps no running statistics (batch statistics in eval too) is refused by name, not by
torch's bare "Expected more than 1 value per channel" from a trial pass of one sample."""

import pytest
import torch
from torch import nn

from lightning_causal.audits.unit_importance import UnitImportanceAudit
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.causal import input_effects, unit_effects
from lightning_causal.causal.structure.graph import causal_graph


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6, track_running_stats=False), nn.ReLU(), nn.Linear(6, 3)).eval()


@pytest.mark.parametrize("run", [
    lambda m, x: unit_effects(m, x, "2"),
    lambda m, x: unit_effects(m, x, "2", method="atp"),
    lambda m, x: unit_effects(m, x[:1], "2"),
    lambda m, x: causal_graph(m, x, ["0", "2"]),
    lambda m, x: input_effects(m, x),
    lambda m, x: audit_model(m, [UnitImportanceAudit(["2"])], x),
], ids=["unit_effects", "atp", "one_sample", "causal_graph", "input_effects", "UnitImportanceAudit"])
def test_batch_statistics_norm_is_refused_by_name(run):
    with pytest.raises(ValueError, match=r"normalisation layer\(s\) \['1'\] have track_running_stats=False"):
        run(_model(), torch.randn(16, 4))
