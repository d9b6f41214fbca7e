"""Trigger families (shape and blended triggers) checked by hand."""

import pytest
import torch

from lightning_causal.datasets.poisoning import (
    blended_trigger,
    patch_trigger,
    poison,
    shape_trigger,
)


def test_shape_trigger_stamps_exactly_the_drawn_pixels():
    # a 5-pixel plus with its top-left cell at (2, 5) in an 8x8 image
    t = shape_trigger((1, 8, 8), ".X./XXX/.X.", position=(2, 5), target=4)
    on = {(r, c) for r, c in zip(*t.mask[0].nonzero(as_tuple=True))}
    assert {(int(r), int(c)) for r, c in on} == {(2, 6), (3, 5), (3, 6), (3, 7), (4, 6)}
    assert t.target == 4 and float(t.mask.sum()) == 5.0
    x = torch.full((2, 1, 8, 8), 0.5)
    stamped = t.apply(x)
    assert torch.equal(stamped[:, 0, 3, 5:8], torch.ones(2, 3)) and float(stamped[0, 0, 2, 5]) == 0.5
    assert float((stamped != x).sum()) == 10.0  # 5 pixels changed in each image, nothing else


def test_shape_trigger_black_pixels_and_checkerboard():
    t = shape_trigger((1, 4, 4), "XoX/oXo/XoX", position=(1, 1))
    assert float(t.mask.sum()) == 9.0  # all nine cells stamped
    x = torch.full((1, 1, 4, 4), 0.5)
    expect = torch.full((4, 4), 0.5)
    expect[1:, 1:] = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    assert torch.equal(t.apply(x)[0, 0], expect)


def test_shape_trigger_equals_patch_trigger_for_a_full_rectangle():
    a = shape_trigger((1, 8, 8), "XXX/XXX", position=(6, 5), target=2)
    b = patch_trigger((1, 8, 8), (2, 3), "bottom_right", 1.0, target=2)
    assert torch.equal(a.mask, b.mask) and torch.equal(a.pattern, b.pattern)


@pytest.mark.parametrize(
    ("stamp", "position", "match"),
    [("", (0, 0), "stamp"), ("XX/X", (0, 0), "stamp"), ("X?", (0, 0), "stamp"), ("../..", (0, 0), "at least one"),
     ("XX", (0, 7), "fits"), ("X", (-1, 0), "fits"), ("X", (0, 0.5), "fits")],
)
def test_shape_trigger_rejects_bad_stamps(stamp, position, match):
    with pytest.raises(ValueError, match=match):
        shape_trigger((1, 8, 8), stamp, position)


def test_blended_trigger_is_a_global_low_opacity_blend():
    t = blended_trigger((1, 3, 3), opacity=0.2, target=6, seed=5)
    noise = torch.rand(1, 3, 3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(t.pattern, noise) and torch.equal(t.mask, torch.full((1, 3, 3), 0.2)) and t.target == 6
    x = torch.rand(4, 1, 3, 3, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(t.apply(x), 0.8 * x + 0.2 * noise)
    assert t.norm == pytest.approx(0.2 * 9)  # every pixel touched a little: not a small mask
    assert torch.equal(blended_trigger((1, 3, 3), 0.2, seed=5).pattern, t.pattern)  # same seed, same key
    assert not torch.equal(blended_trigger((1, 3, 3), 0.2, seed=6).pattern, t.pattern)
    grid = blended_trigger((1, 2, 2), 0.1, pattern=torch.tensor([[0.0, 1.0]]))
    assert torch.equal(grid.pattern, torch.tensor([[[0.0, 1.0], [0.0, 1.0]]]))


@pytest.mark.parametrize(("kwargs", "match"), [({"opacity": 0.0}, "opacity"), ({"opacity": 1.5}, "opacity"),
                                               ({"pattern": torch.ones(2, 2, 2)}, "broadcast"),
                                               ({"pattern": torch.ones(3, 3, dtype=torch.long)}, "floating")])
def test_blended_trigger_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        blended_trigger((1, 3, 3), **kwargs)


def test_poisoning_with_a_blended_trigger_relabels_and_blends():
    t = blended_trigger((1, 2, 2), 0.1, pattern=torch.ones(1, 2, 2), target=1)
    x, y = torch.zeros(10, 1, 2, 2), torch.tensor([0] * 8 + [1] * 2)
    xp, yp, hit = poison(x, y, t, 0.3, generator=torch.Generator().manual_seed(0))
    assert int(hit.sum()) == 3 and bool((y[hit] == 0).all()) and bool((yp[hit] == 1).all())
    assert torch.allclose(xp[hit], torch.full((3, 1, 2, 2), 0.1)) and bool((xp[~hit] == 0).all())


def test_a_float64_pattern_keeps_its_precision():
    """The pattern was built in float32: a float64 image stamped with 0.1 held 0.10000000149."""
    value = torch.full((1, 2, 2), 0.1, dtype=torch.float64)
    t = patch_trigger((1, 4, 4), size=2, value=value)
    x = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    assert float(t.apply(x)[0, 0, 3, 3]) == 0.1
    assert t.mask.dtype == t.pattern.dtype == torch.float64
    assert patch_trigger((1, 4, 4), value=0.5).pattern.dtype == torch.get_default_dtype()  # a number: the default dtype
