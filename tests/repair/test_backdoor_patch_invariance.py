"""The "patch" augmentation: copies with a small random stamp, held by the consistency term to the model
before repair on their *unstamped* source (a small stamp should say nothing), so that a response to stamps
that detection did not flag is trained away. Its stamps and its part of the loss, by hand."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.repair.augment import PATCH_SIDE, augmented_copies, patched, resolve_augment
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm


def test_stamps_are_small_boxes_of_the_batch_extremes_in_every_channel():
    x = torch.rand(200, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    x[0, 0, 0, 0], x[0, 0, 0, 1] = 0.0, 1.0  # the batch's extremes
    y = patched(x, torch.Generator().manual_seed(1))
    changed = (y != x).any(1)  # [N, H, W]: every channel of a stamped pixel takes the value
    assert torch.equal((y != x).all(1) | ~changed, torch.ones_like(changed))
    for i in range(1, 200):
        rows, cols = torch.nonzero(changed[i], as_tuple=True)
        assert rows.numel() >= 1
        assert int(rows.max() - rows.min()) < PATCH_SIDE and int(cols.max() - cols.min()) < PATCH_SIDE
        values = y[i][:, rows, cols].unique()
        assert values.numel() == 1 and float(values) in (0.0, 1.0)  # one value per stamp: the min or the max
    sizes = changed[1:].flatten(1).sum(1)
    assert int(sizes.max()) == PATCH_SIDE**2 and int(sizes.min()) == 1  # from one pixel to a solid 3x3 box
    assert torch.equal(patched(x, torch.Generator().manual_seed(1)), y)  # the generator alone decides


def test_patch_needs_images_and_counts_as_a_copy_of_its_own_row():
    with pytest.raises(ValueError, match=r"image inputs \[N, C, H, W\] for the 'patch' augmentation"):
        resolve_augment("mixup+patch", torch.zeros(4, 6))
    x = torch.rand(5, 1, 4, 4)
    copies, a, b = augmented_copies(x, resolve_augment("patch+patch", x), torch.Generator().manual_seed(0))
    assert copies.shape == (10, 1, 4, 4) and torch.equal(a, torch.arange(5).repeat(2)) and torch.equal(a, b)


class _Flat(nn.Module):
    """Logits of a flattened 1x2x2 image: class 1 answers pixel (0, 0) (a 'backdoor' on a stamp)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0], [6.0, 0.0, 0.0, 0.0]]))

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_stamped_rows_are_held_to_the_unstamped_prediction_before_repair():
    model = _Flat()
    x = torch.rand(6, 1, 2, 2, generator=torch.Generator().manual_seed(2)) * 0.4 + 0.3
    x[0, 0, 1, 1], x[1, 0, 1, 0] = 0.0, 1.0
    y = torch.zeros(6, dtype=torch.long)
    trigger = Trigger(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2), target=1)  # suppression off: consistency alone
    term = BackdoorSuppressionTerm(trigger, unlearn_weight=0.0, path_weight=0.0, distill_weight=1.0, augment="patch", seed=3)
    term.setup(model)
    with torch.no_grad():
        model.fc.weight[1, 0] = 0.0  # the repaired model no longer answers the stamp
    loss = term.loss(model, x, y)
    stamped = patched(x, torch.Generator().manual_seed(3))  # the term's generator, seeded with `seed`

    def kl(p_logits, q_logits):
        p = p_logits.log_softmax(1)
        return (p.exp() * (p - q_logits.log_softmax(1))).sum(1)

    ref, now = _Flat(), model
    with torch.no_grad():
        f0_x, f_x, f_s, f0_s = ref(x), now(x), now(stamped), ref(stamped)
    expected = torch.cat([kl(f0_x, f_x), kl(f0_x, f_s)]).mean()  # teacher: the unstamped source row
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    held_to_itself = torch.cat([kl(f0_x, f_x), kl(f0_s, f_s)]).mean()  # what a plain augmentation would use
    assert abs(float(held_to_itself) - float(expected)) > 1e-3
