"""The randomised methods against Captum called directly, seeded (newuser28, a Captum maintainer's check).

Two faults, both seen as numbers that differed from Captum's with the same seed:

- ``NoiseTunnel``: Captum draws the noise of each batch of ``nt_samples`` on its own, and the batch size was
  sized here from the memory budget (``max_batch_size``, or the measured chunk: another machine), so one seed
  gave other numbers with another budget (27% of the largest value on a digits CNN), though methods.md says the
  batching knobs change no number. The noise of all samples is now drawn once, as Captum's single batch
  draws it, and handed out per batch.
- ``GradientShap``'s own ``stdevs`` option (Captum's noise added to each input) was taken and silently dropped
  (filed with the tunnel's keys): its maps were those of ``stdevs=0``; passed on, ``stdevs=1`` failed on
  Captum's ``assert isinstance(stdevs, float)``.
"""

from __future__ import annotations

import random
import weakref

import numpy as np
import pytest
import torch
from captum.attr import (
    FeatureAblation,
    GradientShap,
    IntegratedGradients,
    NoiseTunnel,
    Saliency,
    ShapleyValueSampling,
)
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from lightning_causal.baselines import attribute
from lightning_causal.models import DigitsCNN


def _cnn_and_inputs() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = DigitsCNN((4, 6), 8).double().eval()
    x = torch.rand(6, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    return model, x, torch.tensor([0, 3, 5, 1, 2, 9])


def _seeded(seed: int) -> None:
    torch.manual_seed(seed), np.random.seed(seed), random.seed(seed)


@pytest.mark.parametrize(("name", "nt_type"), [("Saliency", "smoothgrad"), ("IntegratedGradients", "vargrad"),
                                               ("FeatureAblation", "smoothgrad_sq")])
def test_the_tunnels_numbers_do_not_depend_on_its_batches_and_are_captums_single_batch(name: str, nt_type: str) -> None:
    model, x, t = _cnn_and_inputs()
    options = {"nt_samples": 8, "stdevs": 0.2, "nt_type": nt_type} | ({"n_steps": 3} if name == "IntegratedGradients" else {})
    mask = torch.arange(64).view(1, 1, 8, 8) // 16  # 4 groups of two rows
    _seeded(3)
    cls = {"Saliency": Saliency, "IntegratedGradients": IntegratedGradients, "FeatureAblation": FeatureAblation}[name]
    extra = {"FeatureAblation": {"feature_mask": mask, "baselines": 0.0}, "IntegratedGradients": {"baselines": 0.0},
             "Saliency": {"abs": True}}[name]
    ref = NoiseTunnel(cls(model)).attribute(x, target=t, **options, **extra)  # Captum's default: one batch of 8 copies
    runs = [attribute(model, x, (f"NoiseTunnel({name})", options), t, generator=3, feature_mask=mask, max_batch_size=mbs)
            for mbs in (None, 12, 18)]  # batches of 8 (one), 2 and 3 copies (3 + 3 + 2)
    runs.append(attribute(model, x, (f"NoiseTunnel({name})", {**options, "nt_samples_batch_size": 5}), t, generator=3,
                          feature_mask=mask))
    assert ref.abs().min() > 0 if name == "Saliency" else ref.abs().max() > 0
    for ours in runs:
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12 * float(ref.abs().max()))


def test_a_randomised_method_in_the_tunnel_runs_in_one_batch_whatever_the_budget() -> None:
    model, x, t = _cnn_and_inputs()  # GradientShap draws its own alphas and baselines in each of Captum's batches
    options = {"nt_samples": 4, "stdevs": 0.1, "n_samples": 3}
    _seeded(2)
    ref = NoiseTunnel(GradientShap(model)).attribute(x, target=t, **options, baselines=torch.cat([torch.zeros_like(x[:1]), x]),
                                                     draw_baseline_from_distrib=True)
    for mbs in (None, 12):
        ours = attribute(model, x, ("NoiseTunnel(GradientShap)", options), t, generator=2, max_batch_size=mbs)
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12 * float(ref.abs().max()))


def test_shapley_sampling_in_the_tunnel_runs_in_batches_of_the_budget_with_captums_single_batch_numbers() -> None:
    """Review of f94e442: ShapleyValueSampling inside a tunnel ran all N x nt_samples copies in one batch (passes of 48
    rows under max_batch_size=12). It draws one permutation for every row of a call, so each batch replays the
    permutations of Captum's single batch (the RNG set back to its state after the noise): batches of the budget,
    and of a given nt_samples_batch_size, give Captum's single-batch numbers."""
    model, x, t = _cnn_and_inputs()
    mask = torch.arange(64).view(1, 1, 8, 8) // 16
    options = {"nt_samples": 8, "stdevs": 0.2, "n_samples": 3}
    _seeded(4)
    ref = NoiseTunnel(ShapleyValueSampling(model)).attribute(x, target=t, feature_mask=mask, baselines=0.0, **options)
    rows: list[int] = []
    hook = model.register_forward_pre_hook(lambda _m, args: rows.append(args[0].shape[0]))
    try:
        batched = attribute(model, x, ("NoiseTunnel(ShapleyValueSampling)", options), t, generator=4, feature_mask=mask,
                            max_batch_size=12)
    finally:
        hook.remove()
    assert max(rows) == 12  # two copies of the 6 samples a pass (48 before)
    runs = [batched, attribute(model, x, ("NoiseTunnel(ShapleyValueSampling)", {**options, "nt_samples_batch_size": 3}), t,
                               generator=4, feature_mask=mask)]
    assert ref.abs().max() > 0
    for ours in runs:  # Captum sums Shapley terms in float32
        torch.testing.assert_close(ours, ref.to(ours.dtype), rtol=1e-6, atol=1e-7 * float(ref.abs().max()))


def test_gradient_shaps_own_stdevs_reaches_captum() -> None:
    model, x, t = _cnn_and_inputs()
    distribution = torch.rand(5, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    options = {"baselines": distribution, "n_samples": 7, "stdevs": 0.1}
    ours = attribute(model, x, ("GradientShap", options), t, generator=2)
    _seeded(2)
    ref = GradientShap(model).attribute(x, target=t, **options)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12 * float(ref.abs().max()))
    _seeded(2)
    without_noise = GradientShap(model).attribute(x, target=t, **{**options, "stdevs": 0.0})
    assert (ours - without_noise).abs().max() > 0.05 * without_noise.abs().max()  # the option changes the map
    # a whole number is a number of standard deviations too (Captum's assert wants a float); None is its default, 0
    whole = attribute(model, x, ("GradientShap", {**options, "stdevs": 1}), t, generator=2)
    _seeded(2)
    torch.testing.assert_close(whole, GradientShap(model).attribute(x, target=t, **{**options, "stdevs": 1.0}), rtol=1e-12, atol=0)
    none = attribute(model, x, ("GradientShap", {**options, "stdevs": None}), t, generator=2)
    torch.testing.assert_close(none, without_noise, rtol=1e-12, atol=0)


class _LiveBytes(TorchDispatchMode):
    """The most bytes held at once by the tensors that aten ops made (a view or an in-place op makes none), freed
    when their Python object goes."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        out = func(*args, **(kwargs or {}))
        given = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in given and id(t) not in self.live:
                self.live[id(t)] = t.untyped_storage().nbytes()
                weakref.finalize(t, self.live.pop, id(t), None)
        self.peak = max(self.peak, sum(self.live.values()))
        return out


def test_the_tunnels_noise_drawn_once_takes_the_memory_of_the_noisy_copies_once_and_gives_captums_float32_numbers() -> None:
    """Review of f94e442: the N x nt_samples noisy copies are held while the passes run in batches (they cannot be drawn
    batch by batch with Captum's numbers); Captum's draw held a tensor of the level, the noise and the repeated inputs
    beside them, four times their memory (4.1x here before), now one buffer. float32 inputs: the noise added in place."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 2)).eval()
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    options = {"nt_samples": 32, "stdevs": 0.2}
    with _LiveBytes() as memory:
        ours = attribute(model, x, ("NoiseTunnel(Saliency)", options), 1, generator=5, max_batch_size=4)  # one copy a batch
    copies = x.numel() * 32 * x.element_size()
    assert copies <= memory.peak < 1.5 * copies
    _seeded(5)
    ref = NoiseTunnel(Saliency(model)).attribute(x, target=1, **options)
    assert ref.dtype == torch.float32 and ref.abs().min() > 0
    one_batch = attribute(model, x, ("NoiseTunnel(Saliency)", options), 1, generator=5, max_batch_size=128)
    torch.testing.assert_close(one_batch, ref, rtol=0, atol=0)  # the same noise, the same sums
    for batches in (ours, attribute(model, x, ("NoiseTunnel(Saliency)", options), 1, generator=5, max_batch_size=40)):
        torch.testing.assert_close(batches, ref, rtol=1e-5, atol=1e-6 * float(ref.abs().max()))  # sums in another order
