"""CounterfactualAudit's figure drew the input and the counterfactual on their joint range per sample, so one pixel the
search drove out of the data's range washed both out: a timm-style ViT's counterfactual of a 32x32 image in [0, 0.3]
took a pixel to -0.52 and another to 1.45, and the input was drawn in pale pastels (its pixels in [0.77, 1]), nothing of
the image readable. They are drawn on the input's range now, as InputEffectAudit's maps draw it."""

import torch

from lightning_causal.audits import counterfactual as cf_module
from lightning_causal.audits.counterfactual import split_triptych


def test_input_keeps_its_range_when_the_counterfactual_leaves_it():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8) * 0.3
    cf = x.clone()
    cf[:, 0, 2, 2] = -0.5
    cf[:, 1, 5, 5] = 1.5
    panels = split_triptych(cf_module._triptych(x, cf))
    for k in range(2):
        lo, hi = x[k].min(), x[k].max()
        torch.testing.assert_close(panels["input"][k], (x[k] - lo) / (hi - lo))  # the whole [0, 1] scale, as drawn alone
        unchanged = (cf[k] == x[k])
        torch.testing.assert_close(panels["counterfactual"][k][unchanged], panels["input"][k][unchanged])
        assert panels["counterfactual"][k][0, 2, 2] == 0 and panels["counterfactual"][k][1, 5, 5] == 1  # saturated
        assert panels["difference"][k].abs().max() == 1  # the change's size is the difference's
