"""At ``max_batch_size=1`` the layer map and the causal graph read each sample's clean values alone
(``activations_alone``), which did not count calls: a module that one sample alone runs twice (a branch on the batch
repeating a block; once in the probe's pass) was read at its last call, silently, where the carriers refuse it. One
rule now counts every sample's calls and refuses, naming the module, the sample and the way out. The layer map and the
graph also honour ``max_batch_size=1`` for a model the probe check catches (they refused it again: the loop)."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import causal_graph, layer_causal_map
from tests.causal.test_leftovers_s43a_one_row_loop import _probe
from tests.causal.test_mends_s41a_structure_alone import Branch as HiddenBranch


class Refined(nn.Module):
    """``mid`` applied once more where every sample of the batch has x0 > 0.5."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.inp, self.mid, self.act, self.head = nn.Linear(4, 4), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.mid(self.inp(x)))
        if bool((x[:, 0] > 0.5).all()):
            h = self.act(self.mid(h))
        return self.head(h)


def _refined_probe() -> torch.Tensor:
    x = torch.randn(8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x[:, 0] = (torch.arange(8) % 2).double()  # the odd samples alone run `mid` twice, the probe's pass once
    return x


@pytest.mark.parametrize("build", [
    lambda m, x: layer_causal_map(m, x, layers=["inp", "mid", "head"], target=1, max_batch_size=1),
    lambda m, x: causal_graph(m, x, layers=["inp", "mid"], target=1, max_batch_size=1),
])
def test_a_module_a_sample_alone_runs_twice_is_refused(build) -> None:
    with pytest.raises(ValueError, match=r"module 'mid' .*\(1 time\(s\)\), but sample 1 alone runs it 2 time\(s\).*`layers=`"):
        build(Refined().double().eval(), _refined_probe())


def test_the_layer_map_and_graph_take_one_row_for_a_model_the_probe_check_catches() -> None:
    x, layers = _probe(), ["fc", "act", "head"]
    got = layer_causal_map(HiddenBranch().eval(), x, layers=layers, target=1, max_batch_size=1)
    ref = layer_causal_map(HiddenBranch(per_sample=True).eval(), x, layers=layers, target=1)
    torch.testing.assert_close(got.response, ref.response, rtol=0, atol=1e-6)
    graph = causal_graph(HiddenBranch().eval(), x, layers=["fc", "act"], target=1, max_batch_size=1)
    ref_graph = causal_graph(HiddenBranch(per_sample=True).eval(), x, layers=["fc", "act"], target=1)
    assert graph.nodes == ref_graph.nodes and [e[:2] for e in graph.edges] == [e[:2] for e in ref_graph.edges]
    torch.testing.assert_close(torch.tensor([e[2] for e in graph.edges]), torch.tensor([e[2] for e in ref_graph.edges]),
                               rtol=0, atol=1e-6)
