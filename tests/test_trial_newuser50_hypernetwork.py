"""newuser50 trial: hypernetworks. One that makes each sample's weights from its task (one-hot in the input) is a
model like any: a unit of the hypernetwork has the effect of a hand do(), and the audits leave every weight as found.
One that makes one set of weights for the whole batch (from a task id) has hidden layers of one row: naming one was
refused as 'a module called on some rows only (an expert of a mixture...)', and the layer map's default layers as
'A layer built with batch_first=False ... returns [T, N, ...]'; both now say that the output is one row computed from
no sample and shared by the batch, and give the way out (``intervene`` on the whole probe, which equals a hand do()).
Since leftovers_s34a unit_effects measures such a layer itself, each unit set in the row every sample shares."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import InputEffectAudit, LayerMapAudit, UnitImportanceAudit, audit_model
from lightning_causal.audits import Probe
from lightning_causal.causal import Zero, causal_graph, intervene, layer_causal_map, unit_effects


class _PerSample(nn.Module):  # x = [task one-hot (3) | features (4)]: each sample's W [2, 4] and b from its task
    def __init__(self) -> None:
        super().__init__()
        self.hyper = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.hyper(x[:, :3])
        return torch.einsum("noi,ni->no", p[:, :8].view(-1, 2, 4), x[:, 3:]) + p[:, 8:]


class _OneTask(nn.Module):  # one W [2, 4] for the batch, made from the embedding of one task id
    def __init__(self) -> None:
        super().__init__()
        self.task = nn.Embedding(3, 6)
        self.hyper = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.hyper(self.task(torch.tensor([1]))).view(2, 4))


def test_a_per_sample_hypernetworks_units_equal_a_hand_do_and_the_audits_change_no_weight() -> None:
    torch.manual_seed(0)
    model = _PerSample().double().eval()
    x = torch.cat([F.one_hot(torch.randint(0, 3, (24,)), 3).double(), torch.randn(24, 4, dtype=torch.float64)], 1)
    with torch.no_grad():
        out = model(x)
        t = out.argmax(1, keepdim=True)
        a = torch.tanh(model.hyper[0](x[:, :3]))
        hand = []
        for u in range(16):
            p = model.hyper[2](a * (torch.arange(16) != u))
            y = torch.einsum("noi,ni->no", p[:, :8].view(-1, 2, 4), x[:, 3:]) + p[:, 8:]
            hand.append((out.gather(1, t) - y.gather(1, t))[:, 0])
    assert torch.allclose(unit_effects(model, x, "hyper.1", unit_dim=-1), torch.stack(hand, 1), atol=1e-12)
    before = copy.deepcopy(model.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit_model(model, [UnitImportanceAudit(["hyper.1"], unit_dim=-1), LayerMapAudit(), InputEffectAudit()],
                    Probe(x), probe_size=24)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_batch_level_hypernetworks_unit_is_set_in_its_shared_row_and_equals_the_hand_do() -> None:
    """Refused as shared (naming `intervene`) until leftovers_s34a; unit_effects now sets the unit in the one row every
    sample shares, which gives the weights recomputed by hand; the graph still refuses it."""
    torch.manual_seed(0)
    model, x = _OneTask().eval(), torch.randn(12, 4)
    effects, info = unit_effects(model, x, "hyper.1", unit_dim=-1, target=0, return_info=True)
    assert info.path == "shared" and "1 row(s) every sample shares" in info.reason
    with torch.no_grad():  # the weights recomputed by hand with unit 3 zeroed
        out = model(x)
        a = torch.tanh(model.hyper[0](model.task.weight[1:2]))
        with intervene(model, {"hyper.1": Zero(units=[3])}):
            y = model(x)
        w = model.hyper[2](a * (torch.arange(16) != 3)).view(2, 4)
    assert torch.allclose(y, x @ w.T, atol=1e-6) and not torch.allclose(y, out, atol=1e-4)
    torch.testing.assert_close(effects[:, 3], out[:, 0] - (x @ w.T)[:, 0], atol=1e-5, rtol=0)
    with pytest.raises(ValueError) as err:
        causal_graph(model, x, layers=["hyper.1"], unit_dim=-1)
    message = str(err.value)
    assert "[1, 16]: one row for all samples, an output computed from no sample and shared by the batch" in message
    assert "`unit_effects` and `UnitImportanceAudit` set a unit in it" in message


def test_the_layer_maps_default_layers_of_one_row_are_refused_as_shared_not_as_batch_first() -> None:
    torch.manual_seed(0)
    with pytest.raises(ValueError) as err:
        layer_causal_map(_OneTask().eval(), torch.randn(12, 4))
    message = str(err.value)
    assert "['task', 'hyper.0', 'hyper.2'] return one row for all samples" in message
    assert "batch_first" not in message
