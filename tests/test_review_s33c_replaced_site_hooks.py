"""The hook that gives a row run alone its row of the layer values Captum puts in place of a layer's output
(``CaptumForward.replaced_site``, c52ecbe8) is registered per row alone and removed on every way out of it: a refusal of
the stacked-rows check, a row alone that fails (a model whose pass of one row raises), and a run that answers. A hook
left on the model's layer would hand later passes (training's, the next audit's) the rows of a pass long gone."""

import pytest
import torch
from torch import nn

from lightning_causal.baselines.input_layer_methods import input_layer_attribute
from lightning_causal.baselines.layer_methods import layer_attribute
from tests.test_leftovers_s31a_stacked_rows import PROBE
from tests.test_review_s32b_layer_stacked_rows import LayerBranch


def _hooks(model: nn.Module) -> list[tuple[str, int, int]]:
    return [(name, len(m._forward_hooks), len(m._forward_pre_hooks)) for name, m in model.named_modules()
            if m._forward_hooks or m._forward_pre_hooks]


@pytest.mark.parametrize("case", ["refused", "answered"])
def test_layer_integrated_gradients_leaves_no_hook(case):
    model = LayerBranch(per_row=case == "answered")
    if case == "refused":
        with pytest.raises(ValueError, match="give what they give alone"):
            layer_attribute(model, PROBE, "a", "LayerIntegratedGradients", target=0, max_batch_size=4)
    else:
        layer_attribute(model, PROBE, "a", "LayerIntegratedGradients", target=0, max_batch_size=4)
    assert _hooks(model) == []


class _TokenBranch(nn.Module):
    """Token ids embedded, times 5 where the batch's mean embedding is above 0 (refused by the check)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.fc = nn.Embedding(9, 4), nn.Linear(12, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        e = self.emb(ids)
        return self.fc(e.flatten(1)) * (5 if e.mean() > 0 else 1)


def test_a_refused_layer_feature_ablation_leaves_no_hook():
    model = _TokenBranch().eval()
    ids = torch.randint(0, 9, (6, 3), generator=torch.Generator().manual_seed(2))
    with pytest.raises(ValueError, match="ablated copies"):
        input_layer_attribute(model, ids, "emb", "LayerFeatureAblation", target=0)
    assert _hooks(model) == []


def test_a_row_alone_that_fails_leaves_no_hook():
    from lightning_causal.baselines.captum_forward import CaptumForward
    from lightning_causal.causal.engine.stacked_rows import rows_alone_checked

    model = nn.Sequential(nn.Linear(2, 4), nn.Linear(4, 2))
    forward = CaptumForward(model)
    forward.replaced_site = model[0]

    def fails_alone(_m, _i, out):
        if out.shape[0] == 1:
            raise RuntimeError("a row alone fails")

    handle = model[1].register_forward_hook(fails_alone)  # the rows alone fail after the replaced site ran
    try:
        with rows_alone_checked("The pass"):
            out = forward(torch.randn(5, 2))
    finally:
        handle.remove()
    assert out.shape == (5, 2) and forward.failed_alone
    assert _hooks(model) == []
