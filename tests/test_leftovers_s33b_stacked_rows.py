"""What the stacked-rows check over Captum's passes (7cc1098a, 8895ad65) left: LayerIntegratedGradients and
``input_layer_attribute``'s methods ran unchecked (Captum's hook puts the whole pass's layer values in place of the
layer's output, so a row alone needs its row of them): a model that branches on a statistic of its batch after the
layer got the branch of each pass, silently (14.35 at 4 rows, 20.0 at the default on ``LayerBranch``);
``attribution_graph``'s refusal named LayerConductance on a layer of its wrapper, not the function called; the check
ran the two end rows of a pass alone only, so a DeepLift pass whose inner rows took another branch than its ends went
unseen; and a prototypical network (prototypes from the batch's first rows) got the model's own ``RuntimeError`` out of
Captum's methods, or, with ``max_batch_size`` given, numbers that change with it, where the causal estimators refuse it
in words."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from lightning_causal.baselines import input_layer_methods, layer_methods
from lightning_causal.baselines.attribution_graph import attribution_graph
from lightning_causal.baselines.captum_methods import attribute
from lightning_causal.baselines.input_layer_methods import input_layer_attribute
from lightning_causal.baselines.layer_methods import layer_attribute
from lightning_causal.causal.engine.batching import checked_pass
from lightning_causal.causal.engine.stacked_rows import StackedRowsError, rows_alone_checked
from lightning_causal.causal.structure.graph_data import CausalGraph
from tests.test_captum_stacked_s32_captum import ordinary_models
from tests.test_leftovers_s31a_stacked_rows import PROBE, BatchBranch
from tests.test_review_s32b_layer_stacked_rows import LAYERS, LayerBranch
from tests.test_trial_newuser65_episode_batch import Episode


@contextlib.contextmanager
def unchecked(module):
    """``module``'s passes as they ran without the stacked-rows check."""
    checked = getattr(module, "_stacked_rows_checked", None)
    module._stacked_rows_checked = lambda *args: contextlib.nullcontext()
    try:
        yield
    finally:
        if checked is None:
            del module._stacked_rows_checked
        else:
            module._stacked_rows_checked = checked


def test_layer_integrated_gradients_of_a_model_that_branches_on_its_batch_is_refused():
    # before: 14.35 per unit of sample 0 in passes of 4 rows, 20.0 with the default passes, silently
    with unchecked(layer_methods):
        at4 = layer_attribute(LayerBranch(), PROBE, "a", "LayerIntegratedGradients", target=0, max_batch_size=4)
    assert not torch.allclose(at4[0], torch.tensor([20.0, 10.0]), atol=0.1)
    for rows, said in [(4, "rows [0, 3] run alone give [8.13, 8.13] and in the pass [0.813, 0.813]"),
                       (None, "rows [0, 63] run alone give [0.0159, 29.84] and in the pass [0.159, 29.84]")]:
        with pytest.raises(StackedRowsError, match="the interpolated layer values that Captum's LayerIntegratedGradients "
                                                   "on 'a' stacks in one pass to give what they give alone") as caught:
            layer_attribute(LayerBranch(), PROBE, "a", "LayerIntegratedGradients", target=0, max_batch_size=rows)
        assert said in str(caught.value) and "`max_batch_size=1`" in str(caught.value)
    # the way out: one sample per call in passes of one row gives each sample's own branch, as the per-row model does
    alone = torch.cat([layer_attribute(LayerBranch(), PROBE[i:i + 1], "a", "LayerIntegratedGradients", target=0,
                                       max_batch_size=1) for i in range(4)])
    for rows in (1, 4, None):  # the per-row model: not refused, the same numbers in any pass
        fixed = layer_attribute(LayerBranch(per_row=True), PROBE, "a", "LayerIntegratedGradients", target=0,
                                max_batch_size=rows)
        torch.testing.assert_close(fixed, alone, atol=1e-4, rtol=1e-4)


def ordinary() -> list[tuple[str, nn.Module, torch.Tensor, str]]:
    return [(name, model, x, LAYERS[name]) for name, model, x in ordinary_models() if name in LAYERS]


@pytest.mark.parametrize("name, model, x, layer", ordinary(), ids=[c[0] for c in ordinary()])
def test_ordinary_models_give_the_layer_integrated_gradients_they_gave(name, model, x, layer):
    model.eval()
    for rows in (5, None):
        torch.manual_seed(1)
        with unchecked(layer_methods):
            before = layer_attribute(model, x, layer, "LayerIntegratedGradients", target=1, max_batch_size=rows)
        torch.manual_seed(1)
        assert torch.equal(before, layer_attribute(model, x, layer, "LayerIntegratedGradients", target=1,
                                                   max_batch_size=rows))


class TokenBranch(nn.Module):
    """Token ``t`` embeds as ``[t, 1]``; ``s`` sums the first coordinate over the positions, times 10 where the batch's
    mean of it is above 0.5 (``per_row``: the row's own mean, the refusal's fix)."""

    def __init__(self, per_row: bool = False) -> None:
        super().__init__()
        self.emb, self.per_row = nn.Embedding(4, 2), per_row
        with torch.no_grad():
            self.emb.weight.copy_(torch.stack([torch.arange(4.0), torch.ones(4)], 1))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids)[..., 0]
        s = h.sum(1, keepdim=True)
        if self.per_row:
            return torch.where(h.mean(1, keepdim=True) > 0.5, s * 10, s)
        return s * 10 if h.mean() > 0.5 else s


IDS = torch.tensor([[2, 0], [1, 0], [1, 0], [2, 0]])  # the clean probe's mean 0.75 and each sample's alone: the x10 branch


@pytest.mark.parametrize("method", ["LayerIntegratedGradients", "LayerFeatureAblation"])
def test_input_layer_methods_of_a_model_that_branches_on_its_batch_are_refused(method):
    with unchecked(input_layer_methods):  # before: ran (no check), the branch of each pass
        input_layer_attribute(TokenBranch(), IDS, "emb", method, target=0, baseline=0)
    rows = "interpolated layer values" if method == "LayerIntegratedGradients" else "ablated copies"
    with pytest.raises(StackedRowsError, match=f"the {rows} that Captum's {method} on 'emb' stacks in one pass") as caught:
        input_layer_attribute(TokenBranch(), IDS, "emb", method, target=0, baseline=0)
    assert "input_effects(..., input_layer=...) with `max_batch_size=1`" in str(caught.value)
    # the way out (one sample per call, passes of one row) gives the per-row model's numbers, which it gives in any pass
    alone = torch.cat([input_layer_attribute(TokenBranch(), IDS[i:i + 1], "emb", method, target=0, baseline=0,
                                             max_batch_size=1) for i in range(4)])
    torch.testing.assert_close(input_layer_attribute(TokenBranch(per_row=True), IDS, "emb", method, target=0, baseline=0),
                               alone, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("method", ["LayerIntegratedGradients", "LayerFeatureAblation", "LayerGradientXActivation"])
def test_an_ordinary_token_model_gives_the_input_layer_attributions_it_gave(method):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 3)).eval()
    ids = torch.randint(1, 10, (6, 3))
    for rows in (4, None):
        with unchecked(input_layer_methods):
            before = input_layer_attribute(model, ids, "0", method, target=1, max_batch_size=rows)
        assert torch.equal(before, input_layer_attribute(model, ids, "0", method, target=1, max_batch_size=rows))


def test_attribution_graphs_refusal_names_the_function_called():
    like = CausalGraph(["a"], ["a:0", "a:1", "output:0"], [("a:0", "output:0", 1.0)])
    with pytest.raises(StackedRowsError, match=r"the interpolated inputs that attribution_graph \(Captum's LayerConductance "
                                               r"on the layers \['a'\]\) stacks in one pass") as caught:
        attribution_graph(LayerBranch(), PROBE, like, target=0, max_batch_size=4)
    assert "causal_graph(..., max_batch_size=1)" in str(caught.value) and "on 'a' stacks" not in str(caught.value)
    graph = attribution_graph(LayerBranch(per_row=True), PROBE, like, target=0)  # the per-row model: its graph
    assert graph.nodes == ["a:0", "a:1", "output:0"] and len(graph.edges) == 1


# DeepLift's pass stacks the samples and their baselines, [x; b]: its ends, sample 0 and baseline 3, hold x0 = 2 and take
# the pass's x10 branch alone too; its inner rows hold x0 = 0.2 and take the plain one alone (s = 1.2, in the pass 12);
# sample 2 holds x0 = 2 too, so that the clean probe's check (rows 0 and 1, then 2 and 3, leftovers_s40a) passes
INNER_X = torch.tensor([[2.0, 1.0], [0.2, 1.0], [2.0, 1.0], [0.2, 1.0]])
INNER_B = torch.tensor([[0.2, 1.0], [0.2, 1.0], [0.2, 1.0], [2.0, 1.0]])


def test_a_deeplift_pass_whose_inner_rows_take_another_branch_is_refused():
    with pytest.raises(StackedRowsError, match=r"in a pass of 8 rows \(flat rows 0..7\), row [1-6] \(drawn among its inner "
                                               r"rows; its end rows agree\) run alone gives \[1.2\] and in the pass \[12\]"):
        attribute(BatchBranch(), INNER_X, "DeepLift", target=0, baselines=INNER_B)


def test_the_inner_row_is_drawn_reproducibly_without_moving_the_global_stream():
    def inner_rows_differ(idx):  # ends agree, every inner row differs in the pass
        out = idx.double()
        return out + 100 * ((idx > 0) & (idx < 9)) if idx.numel() > 1 else out

    torch.manual_seed(5)
    state = torch.get_rng_state()
    said = []
    for _ in range(2):
        with rows_alone_checked("The pass"), pytest.raises(StackedRowsError, match="drawn among its inner rows") as caught:
            checked_pass(inner_rows_differ, 10, lambda out: out)
        said.append(str(caught.value))
    assert said[0] == said[1] and torch.equal(torch.get_rng_state(), state)
    with rows_alone_checked("The pass"):  # two rows: the ends only; rows that agree alone: the pass
        assert torch.equal(checked_pass(lambda idx: idx * 2.0, 2, lambda out: out), torch.tensor([0.0, 2.0]))
        assert torch.equal(checked_pass(lambda idx: idx * 2.0, 9, lambda out: out), torch.arange(9) * 2.0)


@pytest.mark.parametrize("call", [
    lambda m, x, rows: attribute(m, x, "IntegratedGradients", target=0, max_batch_size=rows),
    lambda m, x, rows: attribute(m, x, "Saliency", target=0, max_batch_size=rows),
    lambda m, x, rows: attribute(m, x, "FeatureAblation", target=0, max_batch_size=rows),
    lambda m, x, rows: attribute(m, x, "DeepLift", target=0, max_batch_size=rows),
    lambda m, x, rows: layer_attribute(m, x, "enc.1", "LayerConductance", target=0, unit_dim=-1, max_batch_size=rows),
    lambda m, x, rows: layer_attribute(m, x, "enc.1", "LayerIntegratedGradients", target=0, unit_dim=-1,
                                       max_batch_size=rows),
], ids=["IntegratedGradients", "Saliency", "FeatureAblation", "DeepLift", "LayerConductance", "LayerIntegratedGradients"])
@pytest.mark.parametrize("rows", [None, 10, 500])
def test_a_prototypical_network_is_refused_in_the_estimators_words(call, rows):
    # before: the model's RuntimeError from a trial pass of fewer rows (None), or numbers that changed with rows (10, 500)
    x = torch.rand(10, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="compute each sample's output from that sample's rows alone") as caught:
        call(Episode().eval(), x, rows)
    assert "shape '[3, 2, -1]' is invalid" in str(caught.value)  # the model's error, named
    assert "prototypical network's class prototypes" in str(caught.value)


class TokenEpisode(nn.Module):
    """A prototypical network of token ids: the batch's first 4 rows are the support set of 2 classes."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.enc = nn.Embedding(8, 3), nn.Linear(3, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        z = self.enc(self.emb(ids).mean(1))
        return -torch.cdist(z, z[:4].reshape(2, 2, -1).mean(1)) ** 2


@pytest.mark.parametrize("method", ["LayerIntegratedGradients", "LayerFeatureAblation", "LayerGradientXActivation"])
def test_a_prototypical_network_of_tokens_is_refused_by_the_input_layer_methods(method):
    ids = torch.randint(1, 8, (6, 3), generator=torch.Generator().manual_seed(0))
    for rows in (None, 6):
        with pytest.raises(ValueError, match="compute each sample's output from that sample's rows alone") as caught:
            input_layer_attribute(TokenEpisode().eval(), ids, "emb", method, target=0, max_batch_size=rows)
        assert "prototypical network's class prototypes" in str(caught.value)


class NumpyNoise(nn.Module):
    """An MLP whose output adds NumPy noise (a generator the check does not watch): its rows alone differ from their
    pass and from themselves, so the check runs them again after the pass; the noise is additive, so the layer
    attributions are those of the model without it."""

    def __init__(self, noise: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.noise = nn.Linear(4, 8), nn.Linear(8, 2), noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.b(torch.relu(self.a(x)))
        if not self.noise:
            return out
        import numpy as np

        return out + torch.as_tensor(np.random.default_rng().standard_normal((x.shape[0], 1)), dtype=x.dtype)


@pytest.mark.parametrize("method", ["LayerConductance", "LayerGradientXActivation", "LayerIntegratedGradients"])
def test_rows_run_again_after_a_pass_leave_captums_layer_as_the_pass_set_it(method):
    # before: the rows run alone after the pass overwrote the layer Captum saved (its gradient is taken of it):
    # LayerConductance and LayerGradientXActivation said no gradient reaches the layer, LayerIntegratedGradients failed
    # on "The size of tensor a (16) must match the size of tensor b (96)"
    x = torch.rand(6, 4, generator=torch.Generator().manual_seed(1))
    without = layer_attribute(NumpyNoise(noise=False).eval(), x, "a", method, target=0)
    torch.testing.assert_close(layer_attribute(NumpyNoise().eval(), x, "a", method, target=0), without, atol=1e-5, rtol=1e-4)
