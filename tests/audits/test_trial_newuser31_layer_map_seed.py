"""LayerMapAudit's CKA past ``max_rows`` rows reads a random subset of them (newuser31 trial): the
audit had no ``seed=`` (always layer_causal_map's 0), so the subset's share of the CKA could not be
checked from the audit as CausalGraphAudit's, SobolAudit's and CaptumBaseline's seeds allow."""

import pytest
import torch
from torch import nn

from lightning_causal import LayerMapAudit, Probe, layer_causal_map


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3)).double().eval()


def test_layer_map_audit_seed_draws_the_cka_rows_as_layer_causal_map_does():
    m, x = _mlp(), torch.randn(12, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    layers = ["0", "2", "4"]  # 12 samples x 6 columns = 72 rows, 40 of them in the CKA
    cka = {s: LayerMapAudit(layers=layers, max_rows=40, seed=s).run(m, Probe(x)).graphs["layer_map"]["cka"] for s in (0, 1)}
    for s in (0, 1):
        expected = layer_causal_map(m, x, layers=layers, max_rows=40, seed=s).to_dict()["cka"]
        torch.testing.assert_close(torch.as_tensor(cka[s]), torch.as_tensor(expected), atol=1e-12, rtol=0)
    assert not torch.allclose(torch.as_tensor(cka[0]), torch.as_tensor(cka[1]))  # another subset, another CKA
    default = LayerMapAudit(layers=layers, max_rows=40).run(m, Probe(x)).graphs["layer_map"]["cka"]
    assert torch.equal(torch.as_tensor(default), torch.as_tensor(cka[0]))


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_layer_map_audit_refuses_a_seed_that_is_no_natural_number(seed):
    with pytest.raises((ValueError, TypeError), match="argument `seed`"):
        LayerMapAudit(seed=seed)
