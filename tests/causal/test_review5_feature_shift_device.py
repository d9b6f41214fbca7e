"""feature_shifted re-initialised the copy's output layer with an in-place draw from its CPU
generator (``head.weight.uniform_(..., generator=g)``), which a CUDA weight refuses ("Expected a
'cuda' device type for generator but found 'cpu'"): BackdoorSuppressionTerm(contrast=True) could not
set up on a GPU. The draws are made on the generator's device and copied. A CUDA weight is mimicked
on the CPU by an in-place ``uniform_`` that refuses a generator on a model's parameters, as CUDA does
for a CPU generator; the draws themselves are the CPU draws they were."""

import torch
from torch import nn

from lightning_causal._compat import OutOfMemoryError
from lightning_causal.causal.backdoor.feature_shift import feature_shifted


def test_the_head_is_drawn_on_the_generators_device(monkeypatch):
    real = torch.Tensor.uniform_

    def cuda_like(self, *args, generator=None, **kwargs):
        if generator is not None and isinstance(self, nn.Parameter):  # the copy's weight: on the GPU in a fit
            raise RuntimeError("Expected a 'cuda' device type for generator but found 'cpu'")
        return real(self, *args, generator=generator, **kwargs)

    monkeypatch.setattr(torch.Tensor, "uniform_", cuda_like)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.rand(12, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    shifted = feature_shifted(model, x, 3, epochs=1)
    assert torch.allclose(shifted[3].weight.norm(), model[3].weight.norm())


def test_the_draws_are_the_generators_own():
    from lightning_causal.causal.backdoor.feature_shift import _uniform

    weight = torch.zeros(5, 4, dtype=torch.float64)
    expected = torch.empty(5, 4, dtype=torch.float64).uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(3))
    drawn = _uniform(weight, 0.5, torch.Generator().manual_seed(3))
    assert drawn.dtype == torch.float64 and torch.equal(drawn, expected)


class _AtMost(nn.Module):
    """A classifier that refuses passes of more rows than ``limit`` (the memory of a GPU)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.net = limit, nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > self.limit:
            raise OutOfMemoryError(f"a pass of {x.shape[0]} rows")
        return self.net(x)


def test_the_predictions_are_taken_in_batches_of_batch_size():
    """feature_shifted ran the model on all of ``x`` at once for its labels ``ŷ``: training inputs that the
    tuning's batches of ``batch_size`` fit in memory did not fit in that pass (out of memory at set-up)."""
    torch.manual_seed(0)
    model = _AtMost(16)
    x = torch.rand(40, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    shifted = feature_shifted(model, x, 3, epochs=1, batch_size=16)
    assert torch.allclose(shifted.net[3].weight.norm(), model.net[3].weight.norm())


def test_the_cuda_generators_that_the_tuning_seeds_are_restored(monkeypatch):
    """The tuning seeds its dropout with torch.manual_seed, which seeds every CUDA device too, inside a fork
    of the CPU generator only: the CUDA generators were left reseeded after the call. One CUDA device is
    mimicked by the functions of torch.cuda that the fork and the seeding call."""
    state = {"rng": torch.tensor([7], dtype=torch.uint8)}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    # a CUDA build of torch without a driver: the optimizer's step asks whether a CUDA graph is being captured
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": state["rng"].clone())
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda new, device="cuda": state.update(rng=new.clone()))
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: state.update(rng=torch.tensor([seed % 256], dtype=torch.uint8)))
    torch.manual_seed(0)
    state["rng"] = torch.tensor([7], dtype=torch.uint8)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Dropout(0.5), nn.ReLU(), nn.Linear(8, 3))
    feature_shifted(model, torch.rand(12, 1, 4, 4, generator=torch.Generator().manual_seed(1)), 3, epochs=1)
    assert state["rng"].tolist() == [7]
