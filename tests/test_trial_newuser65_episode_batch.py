"""A prototypical network explained on an episode batch (newuser65 trial): class prototypes computed inside forward
from the batch's first rows (the support set), a model whose samples are coupled by design. ``input_effects`` refused
it in words, but ``unit_effects``, ``causal_graph`` and ``layer_causal_map`` let the model's own ``RuntimeError``
(``shape '[3, 2, -1]' is invalid``) out of their first pass of fewer rows than the probe (``unit_effects``' noise check,
the graph's and the map's checks of two rows), before any check of their own; and the refusal said what to do for a
graph only. Both now refuse it with the same ``ValueError``, which names the prototypes and the way out."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import causal_graph, input_effects, layer_causal_map, unit_effects


class Episode(nn.Module):
    """3-way 2-shot: the batch's first 6 rows are the support set, its prototypes their class means."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.enc = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.enc(x)
        prototypes = z[:6].reshape(3, 2, -1).mean(1)
        return -torch.cdist(z, prototypes) ** 2


@pytest.mark.parametrize("estimate", [lambda m, x: unit_effects(m, x, "enc.1", unit_dim=-1),
                                      lambda m, x: causal_graph(m, x, ["enc.1"]),
                                      lambda m, x: layer_causal_map(m, x, torch.arange(4)),
                                      lambda m, x: input_effects(m, x, torch.arange(4))],
                         ids=["unit_effects", "causal_graph", "layer_causal_map", "input_effects"])
def test_episode_batch_is_refused_in_words_that_name_the_prototypes(estimate):
    x = torch.rand(10, 4)
    with pytest.raises(ValueError, match="compute each sample's output from that sample's rows alone") as err:
        estimate(Episode().eval(), x)
    assert "shape '[3, 2, -1]' is invalid" in str(err.value)  # the model's error, named
    assert "prototypical network's class prototypes" in str(err.value)
    assert "the prototypes kept as a buffer" in str(err.value)


def test_an_error_of_the_whole_probe_stays_the_models_own():
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x).reshape(7, -1)  # fails on any batch

    with pytest.raises(RuntimeError, match=r"shape '\[7, -1\]' is invalid"):
        unit_effects(Broken().eval(), torch.rand(5, 4), "lin", unit_dim=-1)


def test_prototypes_fixed_as_a_buffer_run_and_equal_a_hand_loop():
    model = Episode().eval()
    support, queries = torch.rand(6, 4), torch.rand(5, 4)

    class Fixed(nn.Module):  # the way out the refusal names
        def __init__(self) -> None:
            super().__init__()
            self.enc = model.enc
            with torch.no_grad():
                self.register_buffer("prototypes", model.enc(support).reshape(3, 2, -1).mean(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return -torch.cdist(self.enc(x), self.prototypes) ** 2

    fixed = Fixed().eval()
    effects = unit_effects(fixed, queries, "enc.1", unit_dim=-1, target=0)
    with torch.no_grad():
        clean = fixed(queries)[:, 0]
        for k in range(8):
            handle = fixed.enc[1].register_forward_hook(lambda _m, _i, out, k=k: out.index_fill(1, torch.tensor([k]), 0.0))
            torch.testing.assert_close(effects[:, k], clean - fixed(queries)[:, 0])
            handle.remove()
