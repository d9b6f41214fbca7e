"""A dataset whose augmentation is a function holding its own generator (a lambda closing over it, a
``functools.partial`` given it, a bound method of a transform object, a default argument): the
generator search did not look inside functions, so reading the probe drew from that generator and the
training that followed saw other augmentations (other weights with the callback). Reading now restores
the generators captured by functions too."""

from __future__ import annotations

import functools

import torch
from torch.utils.data import DataLoader, Dataset

from lightning_causal.callbacks._probe import probe_from
from lightning_causal.data_reading import rngs_untouched


def _noise(x, generator):
    return x + torch.rand(x.shape, generator=generator)


class _Jitter:
    def __init__(self) -> None:
        self.generator = torch.Generator().manual_seed(4)

    def apply(self, x):
        return _noise(x, self.generator)


_DEFAULT = torch.Generator().manual_seed(5)


def _with_default(x, generator=_DEFAULT):
    return _noise(x, generator)


class _Augmented(Dataset):
    def __init__(self, transform) -> None:
        self.transform = transform

    def __len__(self) -> int:
        return 12

    def __getitem__(self, i):
        return self.transform(torch.full((3,), float(i))), torch.tensor(i % 2)


def _transforms():
    g = torch.Generator().manual_seed(2)
    h = torch.Generator().manual_seed(3)
    return {"lambda": (lambda x: _noise(x, g), g), "partial": (functools.partial(_noise, generator=h), h),
            "method": ((jitter := _Jitter()).apply, jitter.generator), "default": (_with_default, _DEFAULT)}


def test_reading_the_probe_leaves_the_generators_of_function_transforms_where_they_were():
    for name, (transform, generator) in _transforms().items():
        state = generator.get_state()
        loader = DataLoader(_Augmented(transform), batch_size=4, shuffle=True)
        probe = probe_from(loader, 5)
        assert probe.first.shape == (5, 3)
        assert torch.equal(generator.get_state(), state), name
        with rngs_untouched(loader):
            for _ in loader:  # a whole epoch drawn inside the block
                pass
        assert torch.equal(generator.get_state(), state), name
