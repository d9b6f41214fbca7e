"""Captum's methods stack rows in their passes (IntegratedGradients' interpolated inputs, FeatureAblation's perturbed
copies, GradientShap's sampled points), outside the row engine whose chunks the stacked-rows check runs through: on a
model whose forward branches on a statistic of its batch, the Captum attributions were the branch of the pass,
silently (``attribute`` and ``CaptumBaseline``), where the causal estimators refuse the model. Each pass Captum sends
``CaptumForward`` now runs its first and last rows alone too (``stacked_rows.RowsAlone``, the engine's check); ordinary
models, BatchNorm in eval mode, a model that draws (MC dropout) and half precision give the numbers they gave."""

import contextlib
import copy

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline
from lightning_causal.audits.base import Probe
from lightning_causal.baselines import captum_methods
from lightning_causal.baselines.captum_methods import attribute
from lightning_causal.causal.effects.input_effects import input_effects
from tests.test_leftovers_s31a_stacked_rows import ALONE, PROBE, BatchBranch


class RowBranch(BatchBranch):
    """BatchBranch made per-row (the refusal's fix): times 10 where the row's own ``h0`` is above 0.5."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.hidden(x)
        s = h.sum(1, keepdim=True)
        return torch.where(h[:, :1] > 0.5, s * 10, s)


@contextlib.contextmanager
def unchecked():
    """Captum's passes run as they ran before the check."""
    checked = getattr(captum_methods, "_stacked_rows_checked", None)  # None: a tree before the check
    captum_methods._stacked_rows_checked = lambda spec, model: contextlib.nullcontext()
    try:
        yield
    finally:
        if checked is None:
            del captum_methods._stacked_rows_checked
        else:
            captum_methods._stacked_rows_checked = checked


# IntegratedGradients in passes of 4 rows (max_batch_size=4): one step of the four samples, alpha * x. The pass's mean
# of x0 is 1.5 alpha, sample 0's alone 2 alpha: at alpha in (0.25, 1/3] (step 14 of 50, alpha 0.271) sample 0 alone
# takes the x10 branch, s = 10 * 3 alpha = 8.13, and in the pass the plain one, 0.813. FeatureAblation in one pass of
# 8 perturbed copies (max_batch_size=8: perturbations_per_eval 2): x0 zeroed in rows 0-3, x1 in rows 4-7, the mean of
# x0 0.75: row 0 alone s = 1 (the plain branch), 10 in the pass, as input_effects' pass of 8 rows.
@pytest.mark.parametrize("method, rows, said", [
    ("IntegratedGradients", 4, "Expected the interpolated inputs that Captum's IntegratedGradients stacks in one pass to "
     "give what they give alone, but in a pass of 4 rows (flat rows 0..3), rows [0, 3] run alone give [8.13, 8.13] and in "
     "the pass [0.813, 0.813]"),
    ("IntegratedGradients", 64, "rows [0, 63] run alone give [0.0159, 29.84] and in the pass [0.159, 29.84]"),
    ("FeatureAblation", 8, "Expected the perturbed copies that Captum's FeatureAblation stacks in one pass to give what "
     "they give alone, but in a pass of 8 rows (flat rows 0..7), rows [0, 7] run alone give [1, 20] and in the pass "
     "[10, 20]"),
])
def test_captum_passes_that_take_the_other_branch_are_refused(method, rows, said):
    model = BatchBranch()
    with unchecked():  # what it returned before: the branch of each pass, silently
        silently = attribute(model, PROBE, method, target=0, max_batch_size=rows)
    assert torch.isfinite(silently).all()
    with pytest.raises(ValueError, match="stacks in one pass to give what they give alone") as caught:
        attribute(model, PROBE, method, target=0, max_batch_size=rows)
    message = str(caught.value)
    assert said in message and "control flow on a batch statistic" in message and "torch.where" in message
    assert "explain one sample per call (`inputs[i:i + 1]`) with `max_batch_size=1`" in message


@pytest.mark.parametrize("method", ["IntegratedGradients", "FeatureAblation"])
def test_the_ways_out_give_the_rows_alone(method):
    # one sample per call in passes of one row: every row takes its own branch, as the per-row model's do in any pass
    model, fixed = BatchBranch(), RowBranch()
    per_sample = torch.cat([attribute(model, PROBE[i:i + 1], method, target=0, max_batch_size=1) for i in range(4)])
    for rows in (1, 4, 8, None):  # the per-row model is not refused, and its passes give the rows alone
        assert torch.allclose(attribute(fixed, PROBE, method, target=0, max_batch_size=rows), per_sample, atol=1e-5)
    if method == "FeatureAblation":  # the causal effects of the groups, by hand (test_leftovers_s31a_stacked_rows.ALONE)
        assert torch.equal(per_sample, ALONE)


def test_captum_baseline_refuses_the_captum_passes_where_its_causal_effects_run():
    model, probe = BatchBranch(), Probe(PROBE, torch.zeros(4, dtype=torch.long))
    assert torch.equal(input_effects(model, PROBE, target=torch.zeros(4, dtype=torch.long), max_batch_size=4), ALONE)
    for methods, name in [(("IntegratedGradients",), "Captum's IntegratedGradients"),
                          ((("FeatureAblation", {"perturbations_per_eval": 2}),), "Captum's FeatureAblation")]:
        audit = CaptumBaseline(methods=methods, target=0)
        with unchecked():  # it ran, the causal effects beside the branch of Captum's passes
            ran = audit.run(model, probe, max_batch_size=4)
        assert torch.equal(ran.maps["causal"].view(4, 2), ALONE)
        with pytest.raises(ValueError, match=f"that {name} stacks in one pass to give what they give alone"):
            audit.run(model, probe, max_batch_size=4)


class MCDropout(nn.Module):
    """An MLP with dropout on in eval mode too (Monte Carlo dropout): every pass draws."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(6, 16), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(nn.functional.dropout(torch.relu(self.a(x)), 0.3, training=True))


def ordinary_models() -> list[tuple[str, nn.Module, torch.Tensor]]:
    torch.manual_seed(0)
    x = torch.randn(12, 6)
    mlp = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    bn = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    with torch.no_grad():
        bn[1].running_mean.uniform_(-0.5, 0.5)
        bn[1].running_var.uniform_(0.5, 2.0)
    conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16, 3))
    half = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    return [("mlp", mlp, x), ("batchnorm", bn, x), ("cnn", conv, torch.randn(6, 1, 4, 4)), ("mc dropout", MCDropout(), x),
            ("bfloat16", copy.deepcopy(half).bfloat16(), x.bfloat16()), ("float16", copy.deepcopy(half).half(), x.half())]


@pytest.mark.parametrize("name, model, x", ordinary_models(), ids=[c[0] for c in ordinary_models()])
@pytest.mark.parametrize("method", ["IntegratedGradients", "Saliency", "DeepLift", "GradientShap", "FeatureAblation",
                                    "ShapleyValueSampling", "NoiseTunnel(Saliency)"])
def test_ordinary_models_are_not_refused_and_their_attributions_are_unchanged(name, model, x, method):
    if name.endswith("16") and method in ("DeepLift", "ShapleyValueSampling"):
        pytest.skip("half-precision DeepLift and Shapley sampling on the CPU: covered by the float32 models")
    model.eval()
    for rows in (5, None):
        with unchecked():
            before = attribute(model, x, method, target=1, generator=0, max_batch_size=rows)
        after = attribute(model, x, method, target=1, generator=0, max_batch_size=rows)
        assert torch.equal(before, after)
