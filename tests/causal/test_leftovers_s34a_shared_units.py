"""A zero-shot classifier's text tower embeds its C class prompts once per pass: a layer there holds [C, ...] rows
every sample shares. unit_effects and UnitImportanceAudit refused such a layer and named `intervene` (one pass per unit,
by hand); they now set each unit in every shared row, one pass of the probe per unit and chunk
(lightning_causal.causal.effects.shared_units), equal in float64 to a hand 'set every shared row's unit, rerun,
difference' loop. A true fold and [T, N, D] keep their handling; the graph and Captum's layer methods keep refusing,
naming unit_effects; the hooks are gone and the modes restored after a pass that fails mid-way."""

import pytest
import torch
from torch import nn

from lightning_causal import UnitImportanceAudit
from lightning_causal.audits.base import Probe
from lightning_causal.baselines import layer_attribute
from lightning_causal.causal import causal_graph, unit_effects
from lightning_causal.causal.engine.interventions import (
    MeanOf,
    Resample,
    Scale,
    SetTo,
    Zero,
    capture,
)
from tests.test_review_s33a_graph_shared_rows import Folded  # 3 rows per sample, a true fold
from tests.test_review_s33a_graph_shared_rows import ZeroShot as Prompts

PASSES = [0]  # forward passes of every ZeroShot (a counter outside the model: audit_mode restores the model's own)


class ZeroShot(Prompts):
    """logits = 5 cos(image tower(x), text tower(prompt c)): an embedding, a GRU and a projection over 4 prompts of 2
    tokens kept as a buffer (the text tower runs once per pass, on the prompts, never on the samples); its passes
    counted, and failing after `fail_after` of them."""

    def __init__(self, fail_after=None):
        super().__init__()
        self.fail_after = fail_after

    def forward(self, pixels):
        PASSES[0] += 1
        if self.fail_after is not None and PASSES[0] > self.fail_after:
            raise RuntimeError("the pass failed")
        return super().forward(pixels)


def probe(n):
    return torch.rand(n, 1, 3, 3, generator=torch.Generator().manual_seed(n), dtype=torch.float64)


def hand(model, x, layer, unit, set_unit, target):
    """The explained logit with `set_unit(column)` written into every shared row's unit column of `layer`."""
    def hook(_m, _i, out):
        out = out.clone()
        out[..., unit] = set_unit(out[..., unit])
        return out

    handle = dict(model.named_modules())[layer].register_forward_hook(hook)
    try:
        with torch.no_grad():
            return model(x)[torch.arange(len(x)), target]
    finally:
        handle.remove()


def hand_effects(model, x, layer, units, set_unit, target):
    with torch.no_grad():
        clean = model(x)[torch.arange(len(x)), target]
    return torch.stack([clean - hand(model, x, layer, u, set_unit, target) for u in units], 1)


@pytest.mark.parametrize("samples", [1, 3, 4, 9])  # fewer, as many and more samples than prompts
@pytest.mark.parametrize("layer", ["proj", "embed"])
def test_zero_equals_the_hand_loop(samples, layer):
    model, x = ZeroShot().double().eval(), probe(samples)
    target = torch.arange(samples) % 4
    got, info = unit_effects(model, x, layer, unit_dim=-1, target=target, max_batch_size=2, return_info=True)
    expected = hand_effects(model, x, layer, range(got.shape[1]), torch.zeros_like, target)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    assert got.abs().max() > 1e-3  # the text units move the logits
    assert info.path == "shared" and "4 row(s) every sample shares" in info.reason and bool(info.exact.all())


def test_set_to_grid_scale_and_mean_equal_the_hand_loop():
    model, x = ZeroShot().double().eval(), probe(7)
    target = torch.arange(7) % 4
    grid = unit_effects(model, x, "proj", [SetTo(-1.0), SetTo(0.5), SetTo(2.0)], unit_dim=-1, target=target)
    curves = torch.stack([hand_effects(model, x, "proj", range(6), lambda c, v=v: torch.full_like(c, v), target)
                          for v in (-1.0, 0.5, 2.0)])  # clean - f(do(a)): the range over a is the same on -curves
    torch.testing.assert_close(grid, curves.max(0).values - curves.min(0).values, rtol=0, atol=1e-12)
    scaled = unit_effects(model, x, "proj", Scale(3.0, units=[1, 4]), unit_dim=-1, target=target)
    torch.testing.assert_close(scaled, hand_effects(model, x, "proj", [1, 4], lambda c: 3 * c, target), rtol=0, atol=1e-12)
    # mean ablation: the reference recorded on any samples is the 4 shared rows: each unit set to its mean over prompts
    with capture(model, ["proj"]) as seen, torch.no_grad():
        model(probe(2))
    assert seen["proj"].shape == (4, 6)
    mean = unit_effects(model, x, "proj", MeanOf(seen["proj"]), unit_dim=-1, target=target)
    prompts_mean = seen["proj"].mean(0)
    expected = torch.stack([hand_effects(model, x, "proj", [u], lambda c, u=u: torch.full_like(c, prompts_mean[u]), target)[:, 0]
                            for u in range(6)], 1)
    torch.testing.assert_close(mean, expected, rtol=0, atol=1e-12)


def test_one_pass_per_unit_and_chunk_never_per_sample():
    """9 samples in chunks of 3 against one chunk of 9: 6 units x 2 more passes, and 2 more clean passes; nothing
    else changes (the checks' passes do not follow the chunks)."""
    counts = []
    for rows in (9, 3):
        model, PASSES[0] = ZeroShot().double().eval(), 0
        unit_effects(model, probe(9), "proj", unit_dim=-1, target=0, max_batch_size=rows)
        counts.append(PASSES[0])
    assert counts[1] - counts[0] == 6 * 2 + 2


def test_hooks_modes_and_rng_restored_after_a_failed_pass():
    model, x = ZeroShot().double().eval(), probe(5)
    PASSES[0] = 0
    unit_effects(model, x, "proj", unit_dim=-1, target=0)
    model, PASSES[0] = ZeroShot(fail_after=PASSES[0] - 3).double().train(), 0
    state = torch.get_rng_state()
    with pytest.raises(RuntimeError, match="the pass failed"):  # the checks and the clean pass ran: an intervened one failed
        unit_effects(model, x, "proj", unit_dim=-1, target=0)
    assert all(m.training for m in model.modules())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert torch.equal(torch.get_rng_state(), state)


def test_refused_interventions_and_estimates_name_the_shared_rows():
    model, x = ZeroShot().eval(), probe(4).float()
    with pytest.raises(ValueError, match="same 4 rows for every sample.*Resample"):
        unit_effects(model, x, "proj", Resample(torch.zeros(3, 6)), unit_dim=-1, target=0)
    with pytest.raises(ValueError, match="method='exact' without `screen` for layer 'proj'"):
        unit_effects(model, x, "proj", unit_dim=-1, target=0, method="atp")


def test_unit_importance_audit_takes_the_text_tower():
    """A probe of 9 samples beside 4 prompts: the set-up check of rows (fewer rows than samples) let it through."""
    model, x = ZeroShot().double().eval(), probe(9)
    y = torch.arange(9) % 4
    audit = UnitImportanceAudit(["proj", "image.1"], unit_dim={"proj": -1, "image.1": None}, target=0, top_k=6)
    audit.validate(model, Probe(x, y))
    result = audit.run(model, Probe(x, y))
    expected = hand_effects(model, x, "proj", range(6), torch.zeros_like, torch.zeros(9, dtype=torch.long)).abs().mean(0)
    torch.testing.assert_close(result.vectors["importance/proj"], expected, rtol=0, atol=1e-12)
    assert result.meta["path/proj"] == "shared" and any("4 row(s) every sample shares" in n for n in result.meta["notes"])


def test_rows_not_shared_keep_their_handling():
    model = Folded().double().eval()
    x = torch.rand(5, 3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got, info = unit_effects(model, x, "fc", unit_dim=-1, target=1, return_info=True)
    expected = hand_effects(model, x, "fc", range(4), torch.zeros_like, torch.ones(5, dtype=torch.long))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    assert info.path != "shared"

    class Steps(nn.Module):  # a GRU with batch_first=False: [T, N, D]
        def __init__(self):
            super().__init__()
            self.rnn, self.head = nn.GRU(3, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.rnn(x.transpose(0, 1))[0][-1])

    with pytest.raises(ValueError, match="batch_first"):
        unit_effects(Steps().eval(), torch.rand(4, 5, 3), "rnn", unit_dim=-1, target=0)


@pytest.mark.parametrize("estimator", ["graph", "captum"])
def test_graph_and_layer_methods_refuse_naming_unit_effects(estimator):
    x = probe(6).float()
    with pytest.raises(ValueError) as err:
        if estimator == "graph":
            causal_graph(ZeroShot().eval(), x, layers=["image.1", "proj"], unit_dim=-1)
        else:
            layer_attribute(ZeroShot().eval(), x, "proj", "LayerGradientXActivation", target=0, unit_dim=-1)
    text = str(err.value)
    assert "the same 4 rows for all samples" in text and "`unit_effects` or `UnitImportanceAudit`" in text


def test_zero_is_the_default_and_units_select_columns():
    model, x = ZeroShot().double().eval(), probe(3)
    full = unit_effects(model, x, "proj", Zero(), unit_dim=-1, target=2)
    some = unit_effects(model, x, "proj", Zero(units=[5, 0]), unit_dim=-1, target=2)
    torch.testing.assert_close(some, full[:, [5, 0]], rtol=0, atol=0)


class Noisy(ZeroShot):
    """The logits plus noise drawn in eval mode: common random numbers give each sample one draw in its clean and
    intervened passes, so the effects are those of the model without noise."""

    def forward(self, pixels):
        out = super().forward(pixels)
        return out + 0.1 * torch.randn_like(out)


def test_a_model_that_draws_noise_gets_common_random_numbers():
    x = probe(7)
    with pytest.warns(UserWarning, match="random"):
        noisy = unit_effects(Noisy().double().eval(), x, "proj", unit_dim=-1, target=1, max_batch_size=3)
    plain = unit_effects(ZeroShot().double().eval(), x, "proj", unit_dim=-1, target=1, max_batch_size=3)
    torch.testing.assert_close(noisy, plain, rtol=0, atol=1e-12)


class Twice(nn.Module):
    """A text layer applied twice to 4 prompt rows kept as a buffer: each unit is set at both calls."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.image, self.lin = nn.Linear(9, 6), nn.Linear(6, 6)
        self.register_buffer("prompts", torch.randn(4, 6))

    def forward(self, x):
        return self.image(x.flatten(1)) @ torch.tanh(self.lin(torch.tanh(self.lin(self.prompts)))).T


def test_a_layer_called_twice_is_set_at_both_calls_and_says_so():
    model, x = Twice().double().eval(), probe(5)
    got, info = unit_effects(model, x, "lin", target=3, return_info=True)
    expected = hand_effects(model, x, "lin", range(6), torch.zeros_like, torch.full((5,), 3))  # the hook: every call
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    assert info.path == "shared" and info.calls == 2


class OnePrompt(Twice):
    """One prompt row [1, 6] for the whole batch (a hypernetwork's weights, a one-class prompt): [1, ...] on a probe of
    several samples, which the prefix cache refuses before the shared rows are looked for."""

    def __init__(self):
        super().__init__()
        self.prompts = self.prompts[:1].clone()


def test_one_shared_row_is_measured_too_and_the_audit_runs_it():
    model, x = OnePrompt().double().eval(), probe(6)
    got, info = unit_effects(model, x, "lin", target=0, return_info=True)
    torch.testing.assert_close(got, hand_effects(model, x, "lin", range(6), torch.zeros_like, torch.zeros(6, dtype=torch.long)),
                               rtol=0, atol=1e-12)
    assert info.path == "shared" and "1 row(s) every sample shares" in info.reason
    audit = UnitImportanceAudit(["lin"], target=0)
    audit.validate(model, Probe(x))  # the set-up check lets the shared row through, and the run measures it
    torch.testing.assert_close(audit.run(model, Probe(x)).vectors["importance/lin"], got.abs().mean(0), rtol=0, atol=1e-12)
