"""BackdoorSuppressionTerm on batches that carry forward arguments (the table of model(image, tab),
unpack_batch -> (image, y, {"tab": tab})): the repair step failed on Python's "loss() got an
unexpected keyword argument 'additional_forward_args'". The term now refuses them with the reason
(its stamped copies are rows of their own) and the way out."""

import pytest
import torch

from lightning_causal import BackdoorSuppressionTerm, CausalRepairModule
from lightning_causal.causal import Trigger
from tests.helpers.multimodal import ImageTab


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("keyword", [True, False])
def test_forward_arguments_of_the_batch_are_refused_with_the_reason(fuse, keyword):
    torch.manual_seed(0)
    mask = torch.zeros(1, 8, 8)
    mask[:, :2, :2] = 1
    term = BackdoorSuppressionTerm(Trigger(mask, torch.ones(1, 8, 8), 0), name="bd")
    unpack = (lambda b: (b["image"], b["y"], {"tab": b["tab"]})) if keyword else (lambda b: (b["image"], b["y"], (b["tab"],)))
    module = CausalRepairModule(ImageTab(), [term], unpack_batch=unpack, fuse_forward=fuse)
    batch = {"image": torch.rand(6, 1, 8, 8), "tab": torch.randn(6, 5), "y": torch.arange(6) % 2}
    with pytest.raises(ValueError, match=r"takes no forward arguments from the batch.*rows of their own"):
        module.objective(batch)
