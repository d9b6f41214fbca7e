"""Review of the change 8f080e35 (newuser82): LayerIntegratedGradients on a module that runs several times per pass
was refused wherever the calls return different values, so one activation module applied at each layer of a plain
chain (``self.act`` used three times, the most common reuse of a module) was refused too, though Captum's answer there
is the last call's, complete, as for a module run once: its hook replaces every call's output with the last call's
interpolated value, and the earlier calls of a chain reach the output only through the last one. Refused still where
the earlier calls reach the output another way (a skip connection, an ODE's stages) or take another shape."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.baselines import layer_attribute


class _Chain(nn.Module):
    """Three linear layers, one activation module (``shared``) or one per layer; ``skip``: the first activation's
    output is added to the last one's, reaching the output past the last call."""

    def __init__(self, shared: bool, skip: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2, self.l3, self.out = nn.Linear(5, 8), nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 2)
        self.act = nn.Tanh()
        self.act3 = self.act if shared else nn.Tanh()  # the last call: `act` again, or a module of its own
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1 = self.act(self.l1(x))
        h3 = self.act3(self.l3(self.act(self.l2(h1))))
        return self.out(h3 + h1 if self.skip else h3)


class _SharedReluCNN(nn.Module):
    """One ReLU after two convolutions and a linear layer: calls of three shapes."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.c2 = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 6, 3)
        self.fc1, self.fc2, self.relu = nn.Linear(96, 10), nn.Linear(10, 3), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.c2(self.relu(self.c1(x))))
        return self.fc2(self.relu(self.fc1(h.flatten(1))))


def _x() -> torch.Tensor:
    return torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def test_one_activation_module_of_a_chain_is_its_last_calls_integrated_gradients() -> None:
    x = _x()
    shared, own = _Chain(shared=True).double().eval(), _Chain(shared=False).double().eval()
    with pytest.warns(UserWarning, match="runs 3 times per forward pass; LayerIntegratedGradients reads its last call"):
        got = layer_attribute(shared, x, "act", "LayerIntegratedGradients", target=0)
    # the same model with its last activation a module of its own: Captum's answer at a module run once
    want = layer_attribute(own, x, "act3", "LayerIntegratedGradients", target=0)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # complete: the chain's output reads the last call only
    torch.testing.assert_close(got.sum(1), (shared(x) - shared(torch.zeros_like(x)))[:, 0], rtol=0, atol=1e-6)


def test_calls_reaching_the_output_past_the_last_one_are_refused_still() -> None:
    with pytest.raises(ValueError, match=r"Expected layer 'act' to run once .* runs 3 times .* otherwise than through"):
        layer_attribute(_Chain(shared=True, skip=True).double().eval(), _x(), "act", "LayerIntegratedGradients", target=0)


class _GatedSkip(_Chain):
    """The chain with the first activation's output added past the last call through a ReLU that the input's first
    feature opens: closed on a row whose feature is negative, whatever the activation returns there."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1 = self.act(self.l1(x))
        h3 = self.act(self.l3(self.act(self.l2(h1))))
        return self.out(h3 + torch.relu(h1 + 10 * x[:, :1] - 3))


def test_a_skip_path_closed_on_the_first_row_only_is_refused_still() -> None:
    x = _x()
    x[0, 0], x[1:, 0] = -1.0, 1.0  # row 0's gate closed, the others' open
    with pytest.raises(ValueError, match=r"Expected layer 'act' to run once .* runs 3 times"):
        layer_attribute(_GatedSkip(shared=True).double().eval(), x, "act", "LayerIntegratedGradients", target=0)


def test_one_relu_of_layers_of_other_shapes_is_refused_in_words() -> None:
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with pytest.raises(ValueError, match=r"runs 3 times .*give each place its own module"):
        layer_attribute(_SharedReluCNN().eval(), x, "relu", "LayerIntegratedGradients", target=0)
    model = _SharedReluCNN().eval()
    layer_attribute(model, x, "relu", "LayerConductance", target=0)  # reads the last call, warned about
    assert not model.relu._forward_hooks and not hasattr(model.relu, "lc_output_site")


class _EncoderDecoder(nn.Module):
    """One table for the source and the decoder's ids (``tied``: the decoder's own nn.Embedding sharing its weight)."""

    def __init__(self, tied: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.head = nn.Embedding(20, 8), nn.Linear(16, 2)
        self.dec_emb = nn.Embedding(20, 8) if tied else self.emb
        if tied:
            self.dec_emb.weight = self.emb.weight

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([torch.tanh(self.emb(src)).mean(1), self.dec_emb(tgt).mean(1)], 1))


def test_a_table_shared_with_a_decoders_ids_is_refused_naming_the_way_that_works() -> None:
    from lightning_causal.baselines import input_layer_attribute

    src = torch.randint(1, 20, (4, 6), generator=torch.Generator().manual_seed(0))
    tgt = torch.randint(1, 20, (4, 6), generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=r"runs 2 times .* a decoder's.* nn\.Embedding of their own that shares the weight"):
        input_layer_attribute(_EncoderDecoder(tied=False).double().eval(), src, "emb", "LayerIntegratedGradients",
                              target=0, additional_forward_args=(tgt,))
    model = _EncoderDecoder(tied=True).double().eval()  # the way the message names: the same model, one read of `emb`
    got = input_layer_attribute(model, src, "emb", "LayerIntegratedGradients", target=0, additional_forward_args=(tgt,),
                                options={"n_steps": 64})
    with torch.no_grad():
        true = (model(src, tgt) - model(torch.zeros_like(src), tgt))[:, 0]
    torch.testing.assert_close(got.sum(1), true, atol=1e-6, rtol=0)
