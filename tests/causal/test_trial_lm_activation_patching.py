"""Activation patching with ``Patch``: each sample's unit set to its value on the paired (clean) input,
checked in float64 against hand-written hook loops on a left-padded GPT-2 and analytically on a linear model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import Patch, SetTo, capture, intervene, unit_effects

transformers = pytest.importorskip("transformers")

V, T, H = 40, 8, 4


def _gpt2() -> nn.Module:
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=V, n_positions=16, n_embd=32, n_layer=2, n_head=H, resid_pdrop=0.0,
                                  embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=1, eos_token_id=1, pad_token_id=0)
    return transformers.GPT2LMHeadModel(cfg).double().eval()


def _prompts() -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Clean and corrupted prompts (one token changed), left-padded to four lengths, with position ids."""
    g = torch.Generator().manual_seed(1)
    clean = torch.randint(2, V, (4, T), generator=g)
    corrupted = clean.clone()
    corrupted[:, -3] = (clean[:, -3] + 5) % (V - 2) + 2
    mask = torch.ones(4, T, dtype=torch.long)
    for i, length in enumerate([8, 5, 3, 6]):
        mask[i, : T - length] = 0
    clean, corrupted = clean * mask, corrupted * mask
    return clean, corrupted, {"attention_mask": mask, "position_ids": (mask.cumsum(1) - 1).clamp(min=0)}


def _logit_diff(out) -> torch.Tensor:
    last = out.logits[:, -1]
    return last[:, 5] - last[:, 7]


@pytest.mark.parametrize(("site", "layout", "units", "width"), [
    ("transformer.h.1.attn.c_proj:input", {"num_heads": H}, H, 8),   # attention heads
    ("transformer.h.0.mlp.act", {"unit_dim": -1}, 128, 1),            # MLP neurons
])
def test_patching_each_unit_from_the_clean_run_equals_a_hook_loop(site, layout, units, width):
    model = _gpt2()
    clean, corrupted, args = _prompts()
    with capture(model, [site]) as acts:
        model(clean, **args)
    source = acts[site]
    name, is_input = site.split(":")[0], site.endswith(":input")
    module = model.get_submodule(name)
    with torch.no_grad():
        base = _logit_diff(model(corrupted, **args))
        expected = []
        for u in range(units):
            cols = slice(u * width, (u + 1) * width)

            def patch(x: torch.Tensor, cols: slice = cols) -> torch.Tensor:
                x = x.clone()
                x[..., cols] = source[..., cols]
                return x

            handle = (module.register_forward_pre_hook(lambda _m, a: (patch(a[0]),)) if is_input
                      else module.register_forward_hook(lambda _m, _a, o: patch(o)))
            expected.append(base - _logit_diff(model(corrupted, **args)))
            handle.remove()
    expected = torch.stack(expected, 1)
    assert expected.abs().max() > 1e-4  # the patches move the logit difference
    for max_batch_size in (None, 5):  # chunks of rows that mix samples and units
        effects = unit_effects(model, corrupted, site, Patch(source), output=_logit_diff, additional_forward_args=args,
                               max_batch_size=max_batch_size, **layout)
        torch.testing.assert_close(effects, expected, rtol=0, atol=1e-12)
    subset = unit_effects(model, corrupted, site, Patch(source, units=[1, 3]), output=_logit_diff,
                          additional_forward_args=args, **layout)
    torch.testing.assert_close(subset, expected[:, [1, 3]], rtol=0, atol=1e-12)
    with torch.no_grad(), intervene(model, {site: Patch(source, units=[2], **layout)}):
        torch.testing.assert_close(base - _logit_diff(model(corrupted, **args)), expected[:, 2], rtol=0, atol=1e-12)


def test_patch_on_a_linear_model_is_analytic_and_per_sample():
    model = nn.Sequential(nn.Linear(2, 3, bias=False), nn.Linear(3, 1, bias=False)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        model[1].weight.copy_(torch.tensor([[2.0, -1.0, 0.5]]))
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64)
    x_clean = torch.tensor([[0.0, 5.0], [-2.0, 4.0]], dtype=torch.float64)
    source = model[0](x_clean).detach()  # [[0, 5, 5], [-2, 4, 2]]
    effects = unit_effects(model, x, "0", Patch(source))
    h = model[0](x).detach()  # [[1, 2, 3], [3, -1, 2]]
    expected = (h - source) * torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(effects, expected, rtol=0, atol=1e-12)
    # a do-grid mixing the patch with a constant: the range of the two outcomes per unit
    grid = unit_effects(model, x, "0", [Patch(source), SetTo(0.0)])
    torch.testing.assert_close(grid, (source * torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)).abs(), rtol=0, atol=1e-12)


def test_patch_refuses_rows_it_cannot_pair():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    with pytest.raises(ValueError, match="source"):
        Patch(torch.ones(3))
    with pytest.raises(ValueError, match=r"Patch pairs source row i with sample i"):
        with intervene(model, {"0": Patch(torch.ones(4, 3))}):
            model(torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"one row per sample explained \(2\)"):  # recorded on 3 inputs, 2 explained
        unit_effects(model, torch.ones(2, 2), "0", Patch(torch.ones(3, 3)))


def test_unit_importance_audit_refuses_a_patch():
    from lightning_causal.audits import UnitImportanceAudit

    with pytest.raises(ValueError, match="Patch"):
        UnitImportanceAudit(["0"], intervention=Patch(torch.ones(4, 3)))


def test_the_text_page_recipe_runs_and_matches_a_hook_loop():
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "text.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "Patch(" in b]
    ns: dict = {}
    exec(compile(block, "<text.md activation patching>", "exec"), ns)  # noqa: S102 - the docs' own example
    lm, corrupted, args, logit_diff, source = ns["lm"], ns["corrupted"], ns["lm_args"], ns["logit_diff"], ns["acts"][ns["heads"]]
    expected = []
    with torch.no_grad():
        for h in range(4):
            def hook(_m, a, h=h):
                x = a[0].clone()
                x[..., h * 8:(h + 1) * 8] = source[..., h * 8:(h + 1) * 8]
                return (x,)
            handle = lm.transformer.h[1].attn.c_proj.register_forward_pre_hook(hook)
            expected.append(ns["corrupted_ld"] - logit_diff(lm(corrupted, **args)))
            handle.remove()
    torch.testing.assert_close(ns["head_effects"], torch.stack(expected, 1), rtol=0, atol=1e-12)
    gap = ns["clean_ld"] - ns["corrupted_ld"]
    assert gap.abs().min() > 1e-3
    # causal attention: the positions before the changed (last) token hold the same residual stream
    assert (ns["by_position"][:, :5] == 0).all()
    torch.testing.assert_close(ns["by_position"][:, 5], -gap, rtol=0, atol=1e-12)
    torch.testing.assert_close(ns["patched_ld"], ns["clean_ld"], rtol=0, atol=1e-12)


def test_patch_first_order_estimates_on_the_frontier_path():
    # conv -> batch norm -> ReLU -> linear: method="attribution" steps at the linear layer's input, after which
    # the model is linear, so its estimate of each patch is exact; it ran Patch on the rows of a pass alone
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3)).double().eval()
    with torch.no_grad():
        cnn[1].running_mean.uniform_(-0.5, 0.5)
    x, x_clean = torch.randn(5, 1, 8, 8, dtype=torch.float64), torch.randn(5, 1, 8, 8, dtype=torch.float64)
    source = cnn[0](x_clean).detach()
    exact = unit_effects(cnn, x, "0", Patch(source), target=1)
    for max_batch_size in (None, 2):
        estimate = unit_effects(cnn, x, "0", Patch(source), target=1, method="attribution", max_batch_size=max_batch_size)
        torch.testing.assert_close(estimate, exact, rtol=0, atol=1e-12)
    assert exact.abs().max() > 0.05
