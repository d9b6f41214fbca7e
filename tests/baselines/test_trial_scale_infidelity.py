"""Captum's infidelity (and sensitivity_max) ran all ``N * n_perturb_samples`` perturbed inputs in one forward pass,
whatever ``max_batch_size``: the passes now follow the memory budget, and do not change a number."""

import torch
from torch import nn

from lightning_causal.baselines import metrics as M


def _setup():
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 3)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    x = torch.randn(16, 20, generator=g, dtype=torch.float64)
    scores = torch.randn(16, 5, generator=g, dtype=torch.float64)
    per_sample = (torch.randperm(20, generator=g) // 4).view(1, 20).repeat(16, 1)
    per_sample[::2] = torch.arange(20) // 4
    return model, x, scores, per_sample


def test_infidelity_runs_in_passes_of_max_batch_size_and_chunks_change_no_number():
    model, x, scores, per_sample = _setup()
    sizes: list[int] = []
    model.register_forward_pre_hook(lambda _m, args: sizes.append(args[0].shape[0]))
    for mask, normalize in (((torch.arange(20) // 4).view(1, 20), True), (per_sample, False)):
        kw = {"target": torch.arange(16) % 3, "n_perturb_samples": 8, "normalize": normalize}
        whole = M.infidelity(model, x, scores, mask, **kw, max_batch_size=128)
        sizes.clear()
        chunked = M.infidelity(model, x, scores, mask, **kw, max_batch_size=7)
        assert max(sizes) <= 16  # one pass per perturbation of every sample (Captum's least), not 128 rows
        assert torch.allclose(chunked, whole, atol=1e-10, rtol=0)
        assert torch.allclose(M.infidelity(model, x, scores, mask, **kw, max_batch_size=40), whole, atol=1e-10, rtol=0)


def test_sensitivity_in_slices_of_max_examples_per_batch_gives_the_same_numbers():
    model, x, _, _ = _setup()
    rows: list[int] = []

    def explain(z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # gradient summed over groups of 4 inputs
        rows.append(z.shape[0])
        z = z.detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(model(z).gather(1, target.view(-1, 1)).sum(), z)
        return grad.view(z.shape[0], 5, 4).sum(2)

    target = torch.arange(16) % 3
    whole = M.sensitivity(explain, x, target, 0.5, n_perturb_samples=8)
    for per_call in (7, 40):
        rows.clear()
        sliced = M.sensitivity(explain, x, target, 0.5, n_perturb_samples=8, max_examples_per_batch=per_call)
        assert max(rows) <= max(per_call, 16)
        assert torch.allclose(sliced, whole, atol=1e-10, rtol=0)  # the same perturbations of every sample
