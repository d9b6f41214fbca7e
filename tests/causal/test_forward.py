"""How the core calls a model: output selection, forward arguments that follow their rows, token
inputs, and compiled models (issue: any model and batch)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from lightning_causal.causal import (
    Zero,
    average_causal_effect,
    capture,
    input_effects,
    intervene,
    layer_causal_map,
    unit_effects,
)
from lightning_causal.causal.engine.forward import ForwardArgs, select_output
from lightning_causal.causal.engine.interventions import resolve_module
from lightning_causal.causal.structure.counterfactuals import (
    CounterfactualSettings,
    counterfactual_explanation,
)
from tests.helpers.models import seeded

_NEEDS_SET_STANCE = pytest.mark.skipif(  # before, the library refuses them (eager.check_eager_possible)
    getattr(torch.compiler, "set_stance", None) is None, reason="interventions on a torch.compile'd model need torch >= 2.6")



@dataclass
class Output:
    """What a Hugging Face model returns: an object with ``.logits`` (and other fields)."""

    logits: torch.Tensor
    hidden: torch.Tensor | None = None


class MaskedMLP(nn.Module):
    """``[N, T, D]`` features and an ``[N, T]`` mask; returns an object with ``.logits``."""

    def __init__(self, d: int = 3, classes: int = 3) -> None:
        super().__init__()
        self.inp = nn.Linear(d, 8)
        self.act = nn.ReLU()
        self.out = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> Output:
        h = self.act(self.inp(x))  # [N, T, 8]
        w = mask.unsqueeze(-1).to(h.dtype) if mask is not None else torch.ones_like(h[..., :1])
        pooled = (h * w).sum(1) / w.sum(1).clamp_min(1.0)
        return Output(self.out(pooled), h)


def _data(n: int = 5, t: int = 4, d: int = 3):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, t, d, generator=g)
    mask = (torch.arange(t).expand(n, t) < torch.tensor([4, 3, 2, 4, 1]).view(-1, 1)).float()
    return x, mask


def test_select_output_rules():
    t = torch.ones(2, 3)
    assert select_output(t) is t
    assert select_output(Output(t)) is t
    assert select_output({"logits": t, "loss": torch.zeros(())}) is t
    assert select_output(OrderedDict(logits=t)) is t
    assert select_output((torch.zeros(1), t), 1) is t
    assert select_output({"scores": t}, "scores") is t
    assert select_output(Output(t, t * 2), "hidden").sum() == 12
    assert select_output((t,), lambda out: out[0] * 2).sum() == 12
    with pytest.raises(TypeError, match="pass `output=`"):
        select_output((t, t))
    with pytest.raises(TypeError, match="`output='nope'`"):
        select_output({"logits": t}, "nope")
    with pytest.raises(TypeError, match="to select a tensor"):
        select_output({"logits": t, "n": 3}, "n")


def test_forward_args_gather_per_sample_tensors_by_row():
    mask, const = torch.arange(6).view(3, 2), torch.tensor([7.0])
    fa = ForwardArgs((mask, const, "flag"), num_samples=3)
    args, kwargs = fa.take(torch.tensor([2, 0, 2, 1]))
    assert torch.equal(args[0], mask[[2, 0, 2, 1]]) and args[1] is const and args[2] == "flag" and kwargs == {}
    fa = ForwardArgs({"mask": mask}, num_samples=3)
    assert torch.equal(fa.take(torch.tensor([1]))[1]["mask"], mask[[1]])
    assert ForwardArgs(mask, num_samples=3).args[0] is mask  # a single value is one positional argument (Captum)
    with pytest.raises(TypeError, match="argument names"):
        ForwardArgs({1: mask})


def _brute_force_effects(model, x, mask, baseline: float, target):
    """δ_(t,d)(x) by hand: one forward per sample and element, the mask passed by keyword."""
    n, t, d = x.shape
    out = torch.zeros(n, t * d, dtype=x.dtype)
    with torch.no_grad():
        for i in range(n):
            f0 = model(x[i : i + 1], mask=mask[i : i + 1]).logits[0, target[i]]
            for e in range(t * d):
                xi = x[i : i + 1].clone().view(1, -1)
                xi[0, e] = baseline
                out[i, e] = f0 - model(xi.view(1, t, d), mask=mask[i : i + 1]).logits[0, target[i]]
    return out


@pytest.mark.parametrize("max_batch_size", [None, 3])
def test_input_effects_with_model_output_and_keyword_mask_equal_brute_force(max_batch_size):
    model = seeded(MaskedMLP()).double().eval()
    x, mask = (v.double() for v in _data())
    target = torch.tensor([0, 1, 2, 0, 1])
    got = input_effects(model, x, None, 0.5, target=target, max_batch_size=max_batch_size,
                        additional_forward_args={"mask": mask})
    want = _brute_force_effects(model, x, mask, 0.5, target)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=0)
    masked = (mask == 0).repeat_interleave(3, dim=1)  # positions the mask hides: no effect beyond float64 rounding
    assert masked.any() and (got[masked].abs() <= 1e-12).all() and (got[~masked].abs() > 1e-6).any()  # (BLAS kernels differ by batch size)


def test_unit_effects_pass_the_mask_through_full_forwards():
    model = seeded(MaskedMLP()).double().eval()
    x, mask = (v.double() for v in _data())
    got = unit_effects(model, x, "act", target=0, additional_forward_args=(mask,), unit_dim=1)  # positions, on purpose
    with torch.no_grad():
        f0 = model(x, mask).logits[:, 0]
        want = torch.stack([f0 - _unit_zeroed(model, x, mask, u) for u in range(4)], 1)  # dimension 1: positions
    torch.testing.assert_close(got, want, atol=1e-10, rtol=0)


def _unit_zeroed(model, x, mask, u):
    with intervene(model, {"act": Zero(units=[u])}):
        return model(x, mask).logits[:, 0]


def test_output_selects_another_tensor():
    model = seeded(MaskedMLP()).eval()
    x, mask = _data()
    picked = input_effects(model, x, None, output=lambda out: out.logits[:, :2], additional_forward_args={"mask": mask}, target=1)
    full = input_effects(model, x, None, additional_forward_args={"mask": mask}, target=1)
    torch.testing.assert_close(picked, full)


def test_a_tuple_output_fails_naming_output():
    class TwoHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x):
            return self.lin(x), self.lin(x) * 2

    with pytest.raises(TypeError, match="`output=`"):
        input_effects(TwoHeads(), torch.randn(2, 3))
    assert input_effects(TwoHeads(), torch.randn(2, 3), output=1).shape == (2, 3)


def test_default_feature_mask_is_one_group_per_element_across_inputs():
    class Two(nn.Module):
        def forward(self, a, b):
            return torch.stack([a.sum(1) + 10 * b.sum(1), -a.sum(1)], 1)

    a, b = torch.ones(2, 3), torch.ones(2, 2)
    eff = input_effects(Two(), (a, b), target=0)
    assert torch.equal(eff, torch.tensor([[1.0, 1.0, 1.0, 10.0, 10.0]]).expand(2, 5))


class TokenModel(nn.Module):
    def __init__(self, vocab: int = 12, classes: int = 3) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 4)
        self.out = nn.Linear(4, classes)

    def forward(self, ids, attention_mask=None):
        h = self.emb(ids)
        w = attention_mask.unsqueeze(-1).float() if attention_mask is not None else torch.ones_like(h[..., :1])
        return {"logits": self.out((h * w).sum(1))}


def test_token_inputs_take_an_integer_baseline_and_equal_token_replacement():
    model = seeded(TokenModel()).eval()
    ids = torch.tensor([[3, 5, 7, 0], [2, 2, 9, 1]])
    att = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    eff = input_effects(model, ids, baseline=0, target=1, additional_forward_args={"attention_mask": att})
    assert eff.shape == (2, 4)  # one group per position
    with torch.no_grad():
        for i in range(2):
            f0 = model(ids[i : i + 1], att[i : i + 1])["logits"][0, 1]
            for p in range(4):
                swapped = ids[i : i + 1].clone()
                swapped[0, p] = 0
                want = f0 - model(swapped, att[i : i + 1])["logits"][0, 1]
                assert float(eff[i, p]) == pytest.approx(float(want), abs=1e-6)
    assert eff[0, 3] == 0  # padding: attention mask 0


def test_token_inputs_reject_float_baselines_and_float_masks():
    model, ids = TokenModel(), torch.tensor([[3, 5, 7]])
    with pytest.raises(ValueError, match="`baseline` to be an integer"):
        input_effects(model, ids, baseline=0.5)
    with pytest.raises(ValueError, match="`baseline` to be an integer"):
        input_effects(model, ids, baseline=torch.tensor(1.0))
    with pytest.raises(TypeError, match="`feature_mask` to hold integer group ids"):
        input_effects(model, ids, torch.tensor([[0.0, 1.0, 1.0]]))
    with pytest.raises(TypeError, match="floating point `inputs`"):
        average_causal_effect(model, ids)


def test_layer_map_and_counterfactuals_take_output_and_forward_args():
    model = seeded(MaskedMLP()).eval()
    x, mask = _data()
    lm = layer_causal_map(model, x, None, ["inp", "out"], additional_forward_args={"mask": mask}, max_rows=None)
    assert list(lm.nodes)[0] == "<input>" and lm.cka.shape == (2, 2)
    cf = counterfactual_explanation(model, x, 1, CounterfactualSettings(steps=30, lr=0.1),
                                    additional_forward_args={"mask": mask})
    with torch.no_grad():
        assert torch.equal(model(cf.counterfactuals, mask).logits.argmax(1), cf.predicted)


def _mlp() -> nn.Sequential:
    return seeded(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)))


@_NEEDS_SET_STANCE
def test_compiled_model_gives_the_eager_results():
    model = _mlp().eval()
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    compiled = torch.compile(model, backend="eager")  # as silent as inductor about late hooks, and fast
    compiled(x)  # compiled before any hook exists: hooks registered later are invisible to its graph
    assert resolve_module(compiled, "1") is model[1]
    with intervene(compiled, {"1": Zero()}):
        zeroed = compiled(x)
    torch.testing.assert_close(zeroed, model[2].bias.expand(6, 3).detach())
    torch.testing.assert_close(unit_effects(compiled, x, "1"), unit_effects(model, x, "1"))
    torch.testing.assert_close(input_effects(compiled, x), input_effects(model, x))
    with capture(compiled, ["1"]) as acts:
        compiled(x)
    assert acts["1"].shape == (6, 8)


@_NEEDS_SET_STANCE
def test_compiled_submodule_is_intervened_on():
    model = _mlp().eval()
    eager = [m for m in model]
    model[0] = torch.compile(model[0], backend="eager")
    x = torch.randn(3, 4)
    model(x)
    with intervene(model, {"0": Zero(units=[0, 1, 2, 3, 4, 5, 6, 7])}):
        out = model(x)
    torch.testing.assert_close(out, eager[2](eager[1](torch.zeros(3, 8))))


def test_a_segmentation_map_needs_output_and_the_message_says_so():
    model = nn.Sequential(nn.Conv2d(1, 3, 1)).eval()  # [N, 3, H, W] class scores per pixel
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 4\); pass `output=` a callable"):
        input_effects(model, x, None)
    got = input_effects(model, x, None, output=lambda out: out.mean((2, 3)), target=1)
    with torch.no_grad():
        full = model(x).mean((2, 3))[:, 1]
        x0 = x.clone()
        x0[:, 0, 1, 2] = 0.0  # feature 6 (row 1, column 2) set to the default baseline
        torch.testing.assert_close(got[:, 6], full - model(x0).mean((2, 3))[:, 1])


def test_an_output_without_one_row_per_sample_is_refused_with_a_fix():
    """A tagger returning [N * T, C] (the shape cross_entropy takes) failed deep inside the estimators
    with an expand error; [N, T, C] was told to use out.mean((2, 3)), which fails on it."""
    from lightning_causal.causal import input_effects

    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.head = nn.Embedding(10, 4), nn.Linear(4, 3)

        def forward(self, ids):
            return self.head(self.emb(ids)).reshape(-1, 3)

    ids = torch.randint(0, 10, (4, 6), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"one row per input row \(4\) but got shape \(24, 3\).*`output=`"):
        input_effects(Flat(), ids, baseline=0)
    effects = input_effects(Flat(), ids, baseline=0, output=lambda out: out.view(-1, 6, 3).mean(1))
    assert effects.shape == (4, 6)
    with pytest.raises(ValueError, match=r"out\.mean\(1\)"):
        input_effects(Flat(), ids, baseline=0, output=lambda out: out.view(-1, 6, 3))


@pytest.mark.parametrize("on_meta", ["model", "inputs"])
def test_a_model_or_inputs_on_the_meta_device_are_refused_by_name(on_meta):
    # they failed deep inside with "Tensor on device meta is not on the expected device cpu!" or
    # "Tensor.item() cannot be called on meta tensors", naming neither the argument nor the fix
    from lightning_causal.causal import causal_graph, counterfactual_explanation

    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(5, 3)
    if on_meta == "model":
        model = model.to("meta")
    else:
        x = x.to("meta")
    match = "`model` to hold its weights in memory but '0.weight' is on the meta device" if on_meta == "model" else \
        "`inputs` to hold data but got a tensor on the meta device"
    for call in (lambda: unit_effects(model, x, "1"), lambda: input_effects(model, x),
                 lambda: average_causal_effect(model, x), lambda: causal_graph(model, x, ["1"]),
                 lambda: layer_causal_map(model, x)):
        with pytest.raises(ValueError, match=match):
            call()
    if on_meta == "model":
        with pytest.raises(ValueError, match=match):
            counterfactual_explanation(model, x, 1)


def test_a_dtype_mismatch_names_the_inputs_and_the_model_dtypes():
    # torch's "mat1 and mat2 must have the same dtype, but got Double and Float" named neither
    # `inputs` nor the fix
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(18, 2))
    x = torch.rand(2, 1, 5, 5, dtype=torch.float64)
    hint = r"Argument `inputs` is torch.float64 but the model's parameters are torch.float32: .*x.to\(torch.float32\)"
    for call in (lambda: input_effects(model, x), lambda: unit_effects(model, x, "0"), lambda: layer_causal_map(model, x)):
        with pytest.raises(RuntimeError, match=hint):
            call()
    mixed = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2).double())
    with pytest.raises(RuntimeError, match=r"parameters have several dtypes \(\['torch.float32', 'torch.float64'\]\)"):
        input_effects(mixed, torch.randn(2, 3))
    with pytest.raises(RuntimeError, match=r"^boom$"):  # other errors pass through unchanged
        input_effects(_Raises(), torch.randn(2, 3))


class _Raises(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")
