"""A zero-shot classifier given its C class prompts as a second input of the batch's tuple (`unpack_batch=lambda b:
((b['pixels'], prompts), b['label'], None)`) returns [n, C] and trains with C != n; with C == n (8 classes, batches of
8) 5ccde729's check cuts the prompts with the rows, sees [n - 1, n - 1] and refuses it as an in-batch score matrix,
naming the zero-shot classifier it is as the way out. The two cannot be told apart by their shapes; the refusal now
names the case and its exact way out, prompts passed whole (`mark_whole`), which trains."""

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip, mark_whole


class ZeroShot(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.image, self.text = nn.Linear(4, 6), nn.Linear(5, 6)

    def forward(self, pixels, prompts):
        return 10 * F.normalize(self.image(pixels), dim=-1) @ F.normalize(self.text(prompts), dim=-1).T


def test_prompts_as_many_as_the_rows_are_named_with_the_way_out():
    g = torch.Generator().manual_seed(0)
    pixels, prompts = torch.rand(8, 4, generator=g), torch.rand(8, 5, generator=g)
    pixels[:, 0] = (pixels[:, 0] > 0.5).float()
    batch = {"pixels": pixels, "label": torch.tensor([3, 1, 0, 2, 7, 5, 6, 4])}
    repair = CausalRepairModule(ZeroShot(), [CounterfactualFairnessTerm(AttributeFlip(0))], explain=0,
                                unpack_batch=lambda b: ((b["pixels"], prompts), b["label"], None))
    with pytest.raises(MisconfigurationException) as err:
        repair.objective(batch)
    text = str(err.value)
    assert "as many as the batch's 8 rows by chance" in text and "mark_whole((prompts,), [0])" in text
    way = CausalRepairModule(ZeroShot(), [CounterfactualFairnessTerm(AttributeFlip(0))],
                             unpack_batch=lambda b: (b["pixels"], b["label"], mark_whole((prompts,), [0])))
    _, logs = way.objective(batch)  # the prompts whole: the task loss is the zero-shot classifier's cross-entropy
    assert torch.allclose(logs["repair/task_loss"], F.cross_entropy(ZeroShot()(pixels, prompts), batch["label"]))
