"""Models that draw random numbers in eval mode (MC dropout kept on, a sampled latent): the
estimators compare each intervened pass with a clean pass that draws the same noise (common random
numbers), leave the caller's random streams alone and say what they did."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import input_effects, interventional_expectations, unit_effects


class SampledLatent(nn.Module):
    """z = mu(x) + sigma * eps in every pass (eval included), then a linear head: the noise term
    W sigma eps is the same for a sample and any intervention on it when eps is common."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.enc = nn.Linear(5, 3).double()
        self.head = nn.Linear(3, 2).double()
        with torch.no_grad():
            for p in (*self.enc.parameters(), *self.head.parameters()):
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
        self.log_sigma = nn.Parameter(torch.tensor([0.5, -0.2, 1.0], dtype=torch.float64))
        self.sample = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = self.enc(x)
        z = mu + self.log_sigma.exp() * torch.randn_like(mu) if self.sample else mu
        return self.head(z)


class MCDropout(nn.Module):
    """relu(fc1 x), dropout kept on (training=True), linear out; input 4 is ignored (zero weights)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.fc1, self.out, self.p = nn.Linear(5, 6).double(), nn.Linear(6, 2).double(), p
        with torch.no_grad():
            for prm in (*self.fc1.parameters(), *self.out.parameters()):
                prm.copy_(torch.randn(prm.shape, generator=g, dtype=torch.float64))
            self.fc1.weight[:, 4] = 0.0
            self.fc1.bias.fill_(3.0)  # most units active: the dropout mask shows in the output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.dropout(F.relu(self.fc1(x)), self.p, training=True))


X = torch.randn(7, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)


@pytest.mark.parametrize("max_batch_size", [1, 3, None])
def test_effects_of_a_sampled_latent_model_cancel_its_noise(max_batch_size):
    model = SampledLatent()
    with pytest.warns(UserWarning, match="draws random numbers in eval mode"):
        got = input_effects(model, X, target=1, max_batch_size=max_batch_size)
    model.sample = False  # the noise term is additive: with common noise the effects are the noise-free ones
    want = input_effects(model, X, target=1)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


def test_interventional_curves_of_a_sampled_latent_model_hold_one_noise_per_sample():
    model = SampledLatent()
    values = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)
    with pytest.warns(UserWarning, match="run with common random numbers"):
        mu, _ = interventional_expectations(model, X, values=values, target=0, max_batch_size=4)
    model.sample = False
    plain, _ = interventional_expectations(model, X, values=values, target=0)
    # each sample's noise shifts every value and group alike: the curves move by one constant
    shift = mu - plain
    torch.testing.assert_close(shift, shift[0, 0].expand_as(shift), atol=1e-12, rtol=0)


def test_a_feature_mc_dropout_ignores_has_effect_zero_and_unit_effects_are_one_mask():
    model = MCDropout()
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eff = input_effects(model, X, target=0, max_batch_size=2)
        units = unit_effects(model, X, "fc1", target=0, max_batch_size=5)
    assert torch.equal(eff[:, 4], torch.zeros(7, dtype=torch.float64))
    # zeroing unit u removes out_u * keep_u * relu_u / (1 - p): 0 where the common mask dropped it
    full = model.out.weight[0] * F.relu(model.fc1(X)) / (1 - model.p)
    dropped = units.abs() < 1e-12
    torch.testing.assert_close(torch.where(dropped, 0.0, units), torch.where(dropped, 0.0, full).detach(), atol=1e-12, rtol=0)
    assert 0 < int(dropped.sum()) < dropped.numel() - int((full.abs() < 1e-12).sum())


def test_noisy_estimators_leave_the_global_rng_and_repeat_bit_identically():
    model = MCDropout()
    torch.manual_seed(3)
    state = torch.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = (input_effects(model, X), unit_effects(model, X, "fc1"),
                 interventional_expectations(model, X, values=torch.tensor([0.0, 1.0], dtype=torch.float64))[0])
        assert torch.equal(torch.get_rng_state(), state)
        again = (input_effects(model, X), unit_effects(model, X, "fc1"),
                 interventional_expectations(model, X, values=torch.tensor([0.0, 1.0], dtype=torch.float64))[0])
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), state)


def test_unit_effects_of_a_noisy_model_say_the_path_and_a_deterministic_model_gives_no_warning():
    model = MCDropout()
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="run with common random numbers"):
        _, info = unit_effects(model, X, "fc1", return_info=True)
    assert info.path == "full" and "draws random numbers" in info.reason
    plain = nn.Sequential(nn.Linear(5, 3), nn.Dropout(0.5), nn.Linear(3, 2)).train()  # dropout off in eval mode
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        input_effects(plain, X.float())
        assert unit_effects(plain, X.float(), "0", return_info=True)[1].path == "fx"


class NoisySum(nn.Module):
    """y = x0 + 2 x1 + 0.5 eps, x2 ignored, eps drawn in every pass: with x ~ U(0, 1)^3, Var y = 5/12 + 1/4."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, 0] + 2 * x[:, 1] + 0.5 * torch.randn(x.shape[0], dtype=x.dtype)).unsqueeze(1)


def test_sobol_indices_of_a_noisy_model_give_an_ignored_input_no_share():
    from lightning_causal.causal import UniformCube, sobol_indices

    torch.manual_seed(0)
    state = torch.get_rng_state()
    with pytest.warns(UserWarning, match="run with common random numbers"):
        res = sobol_indices(NoisySum(), UniformCube(3), 4096, n_bootstrap=0, max_batch_size=1000)
    assert torch.equal(torch.get_rng_state(), state)
    # A and every A_B^i share their noise: the ignored input's total index is exactly 0 (fresh noise
    # per row gave it the noise's share, 0.25 / (2/3) = 0.375); the others near their analytic 1/8, 1/2
    assert float(res.total[2]) == 0.0
    torch.testing.assert_close(res.total[:2], torch.tensor([0.125, 0.5], dtype=torch.float64), atol=0.03, rtol=0)
    torch.testing.assert_close(res.first[:2], torch.tensor([0.125, 0.5], dtype=torch.float64), atol=0.03, rtol=0)


def test_icc_of_a_noisy_model_gives_a_node_it_ignores_no_share():
    from lightning_causal.causal import AdditiveNoiseSCM, intrinsic_causal_contributions

    data = torch.randn(500, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    scm = AdditiveNoiseSCM(["a", "b", "c"], {}).fit(data)
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="run with common random numbers"):
        res = intrinsic_causal_contributions(NoisySum(), scm, n=1024, n_bootstrap=0)
    assert float(res.total[2]) == 0.0 and float(res.total[1]) > float(res.total[0]) > 0.05


def test_flipping_or_stamping_a_column_mc_dropout_ignores_changes_nothing():
    from lightning_causal.causal import (
        AttributeFlip,
        Trigger,
        counterfactual_fairness_gap,
        trigger_effect,
    )

    model = MCDropout()
    x = X.clone()
    x[:, 4] = (x[:, 4] > 0).double()  # a binary column the model ignores
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="run with common random numbers"):
        gap = counterfactual_fairness_gap(model, x, AttributeFlip(4), target=0, max_batch_size=3)
    assert torch.equal(gap["delta"], torch.zeros(7, dtype=torch.float64)) and gap["flip_rate"] == 0.0
    mask = torch.zeros(5, dtype=torch.float64)
    mask[4] = 1.0
    with pytest.warns(UserWarning, match="run with common random numbers"):
        effect = trigger_effect(model, x, Trigger(mask, 5.0, target=1), max_batch_size=3)
    assert torch.equal(effect, torch.zeros(7, dtype=torch.float64))


class SkipsABlock(nn.Module):
    """A residual block skipped per sample with probability 0.1 in every pass (stochastic depth
    that ignores self.training): noise of one bit per sample, which 8 samples often do not show."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.block, self.out = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        return self.out(h + (torch.rand(x.shape[0], 1) > 0.1).to(h.dtype) * self.block(h))


def test_noise_drawn_once_per_sample_is_found_whatever_the_seed():
    model, x = SkipsABlock(), torch.randn(32, 4, generator=torch.Generator().manual_seed(5))
    for seed in range(20):
        torch.manual_seed(seed)
        with pytest.warns(UserWarning, match="run with common random numbers"):
            input_effects(model, x, target=0)


class NoisyEmbedding(nn.Module):
    """Token ids -> embeddings -> dropout kept on -> the first position's -> linear: the other
    positions do not matter."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.head = nn.Embedding(5, 6), nn.Linear(6, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(F.dropout(self.emb(ids), 0.3, training=True)[:, 0])


def test_effects_at_the_embedding_layer_use_common_noise():
    model, ids = NoisyEmbedding(), torch.randint(1, 5, (6, 4), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="run with common random numbers"):
        eff = input_effects(model, ids, input_layer="emb", target=0, max_batch_size=5)
    assert torch.equal(eff[:, 1:], torch.zeros(6, 3)) and bool((eff[:, 0].abs() > 0).any())


def test_the_layer_map_of_mc_dropout_gives_an_ignored_feature_no_response():
    from lightning_causal.causal import column_mask, layer_causal_map

    model = MCDropout()
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="run with common random numbers"):
        lmap = layer_causal_map(model, X, column_mask(5), layers=["fc1", "out"], max_batch_size=3)
    # input 4 has zero weights: with one noise per sample in the clean and the intervened passes
    # nothing after it moves, the dropped-out layer `out` and the output included
    assert set(lmap.group_effects) >= {"<output>"} and len(lmap.group_effects) >= 2
    for node, effects in lmap.group_effects.items():
        if node == "<input>":  # ||Δx||: the input itself moves
            continue
        assert float(effects[4]) == 0.0, node
        assert float(effects[:4].abs().sum()) > 0, node
