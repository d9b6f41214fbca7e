"""Dense-output trial: a segmentation model explained by the mean score of a region that differs
per image (a mask per sample).

A user wrote ``output=lambda out: (out[:, 1] * masks).sum((1, 2)) / masks.sum((1, 2))`` with the
probe's masks ``[N, H, W]``. The estimators call ``output=`` on batches of rows they choose, so the
masks never followed the rows: on two samples with ``max_batch_size=1`` every one-row pass broadcast
to two rows and ``unit_effects`` returned wrong numbers silently; otherwise torch's bare "The size of
tensor a (8) must match the size of tensor b (2)" said nothing of ``output=`` or of the way out. The
way out (the masks as a forward argument of a wrapper, whose rows follow their samples) is checked
against a float64 loop.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, patch_mask, unit_effects


class _Seg(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1, self.act, self.c2 = nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, 1, H, W] -> per-pixel logits [N, 2, H, W]
        return self.c2(self.act(self.c1(x)))


class _RegionMean(nn.Module):
    """Each class's mean logit over the sample's own mask: [N, 2]."""

    def __init__(self, seg: nn.Module) -> None:
        super().__init__()
        self.seg = seg

    def forward(self, x: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        out = self.seg(x)
        return (out * masks[:, None]).sum((2, 3)) / masks[:, None].sum((2, 3))


def _data(n: int):
    torch.manual_seed(0)
    seg = _Seg().double().eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 1, 8, 8, generator=g, dtype=torch.float64)
    masks = (torch.rand(n, 8, 8, generator=g) > 0.5).double()
    return seg, x, masks


def _zeroed_unit_loop(seg, model, x, masks, units=4):
    with torch.no_grad():
        clean, rows = model(x, masks)[:, 1], []
        for u in range(units):
            handle = seg.act.register_forward_hook(lambda mod, i, o, u=u: o.index_fill(1, torch.tensor([u]), 0.0))
            rows.append(clean - model(x, masks)[:, 1])
            handle.remove()
    return torch.stack(rows, 1)


def test_a_closure_over_per_sample_masks_is_refused_not_broadcast():
    seg, x, masks = _data(2)

    def region(out):
        return ((out[:, 1] * masks).sum((1, 2)) / masks.sum((1, 2))).unsqueeze(1)

    with pytest.raises(ValueError, match=r"returned shape \(2, 1\) for a pass of one row\. A callable `output=`.*forward argument"):
        unit_effects(seg, x, "act", target=0, output=region, max_batch_size=1)


@pytest.mark.parametrize("call", ["unit_effects", "input_effects"])
def test_a_shape_error_in_the_output_callable_names_the_way_out(call):
    seg, x, masks = _data(4)

    def region(out):
        return ((out[:, 1] * masks).sum((1, 2)) / masks.sum((1, 2))).unsqueeze(1)

    with pytest.raises(RuntimeError, match=r"must match.*A callable `output=` is called on the model's output for batches of rows"
                                           r".*additional_forward_args=\{'masks': masks\}"):
        if call == "unit_effects":
            unit_effects(seg, x, "act", target=0, output=region)
        else:
            input_effects(seg, x, feature_mask=patch_mask((1, 8, 8), 4), target=0, output=region)


@pytest.mark.parametrize("max_batch_size", [None, 1, 3])
def test_masks_as_a_forward_argument_equal_a_float64_loop(max_batch_size):
    seg, x, masks = _data(5)
    model, fm = _RegionMean(seg), patch_mask((1, 8, 8), 4)
    args = {"masks": masks}
    units = unit_effects(model, x, "seg.act", target=1, additional_forward_args=args, max_batch_size=max_batch_size)
    torch.testing.assert_close(units, _zeroed_unit_loop(seg, model, x, masks), rtol=0, atol=1e-12)
    effects = input_effects(model, x, feature_mask=fm, target=1, additional_forward_args=args, max_batch_size=max_batch_size)
    with torch.no_grad():
        clean = model(x, masks)[:, 1]
        ref = torch.stack([clean - model(torch.where((fm == g).expand_as(x), 0.0, x), masks)[:, 1] for g in range(4)], 1)
    torch.testing.assert_close(effects, ref, rtol=0, atol=1e-12)


def test_the_docs_region_mean_snippet_runs_and_equals_a_float64_loop():
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "your_model.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "class RegionMean" in b]
    seg, x, masks = _data(3)
    ns = {"nn": nn, "seg": seg, "x": x, "masks": masks, "H": 8, "W": 8, "input_effects": input_effects, "patch_mask": patch_mask}
    exec(compile(code, "<docs snippet>", "exec"), ns)  # noqa: S102 - the docs' own example
    fm = patch_mask((1, 8, 8), 4)
    model = _RegionMean(seg)
    with torch.no_grad():
        clean = model(x, masks)[:, 1]
        ref = torch.stack([clean - model(torch.where((fm == g).expand_as(x), 0.0, x), masks)[:, 1] for g in range(4)], 1)
    torch.testing.assert_close(ns["effects"], ref, rtol=0, atol=1e-12)


def test_the_fix_for_a_tagger_returning_a_mapping_names_its_logits():
    """A tagger returning {"logits": [N, T, C]} was told `output=lambda out: out.mean(1)`, which
    fails again on the mapping the callable receives; the message names `out['logits']` now, and
    that callable runs."""

    class _Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.head = nn.Embedding(10, 8), nn.Linear(8, 3)

        def forward(self, ids: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"logits": self.head(self.emb(ids))}

    torch.manual_seed(0)
    model, ids = _Tagger().double(), torch.randint(1, 10, (4, 6))
    with pytest.raises(ValueError, match=r"got shape \(4, 6, 3\).*out\.mean\(1\).*`out\['logits'\]` where that is a Hugging Face output or a mapping"):
        input_effects(model, ids, baseline=0)
    effects = input_effects(model, ids, baseline=0, target=2, output=lambda out: out["logits"][:, 3])
    with torch.no_grad():
        clean = model(ids)["logits"][:, 3, 2]
        ref = torch.stack([clean - model(ids.index_fill(1, torch.tensor([t]), 0))["logits"][:, 3, 2] for t in range(6)], 1)
    torch.testing.assert_close(effects, ref, rtol=0, atol=1e-12)


def test_forward_select_checks_the_rows_of_a_pass_when_given_them():
    """``Forward.select(out, rows=R)`` (for suffix passes, which call ``select`` directly) refuses a
    callable output whose rows are not the pass's (here one row too many)."""
    from lightning_causal.causal.engine.forward import Forward

    seg, x, _ = _data(4)

    def region(out):
        scores = out[:, :1, 0, 0]
        return torch.cat([scores, scores[:1]])  # a row more than the pass

    forward = Forward(seg, output=region)
    with torch.no_grad():
        raw = seg(x[:3])
    with pytest.raises(ValueError, match=r"one row per input row \(3\) but got shape \(4, 1\)\. A callable `output=`"):
        forward.select(raw, rows=3)
    assert forward.select(raw).shape == (4, 1)  # without rows: as before
    assert Forward(seg, output=lambda out: out.mean((2, 3))).select(raw, rows=3).shape == (3, 2)
