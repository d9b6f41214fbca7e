"""Names that moved between the supported dependency versions (the floors in pyproject.toml).

Imports only torch, so that the pure-PyTorch core (``lightning_causal.causal``) may use it. Use these names instead
of the newer spellings; ``tests/test_compat.py`` checks that the library does not name the newer ones elsewhere.
"""

import torch

#: ``torch.OutOfMemoryError`` (torch >= 2.5, the device-generic class) where it exists, else
#: ``torch.cuda.OutOfMemoryError`` (torch 2.2 - 2.4): on torch >= 2.5 the two are one class.
OutOfMemoryError: type[RuntimeError] = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)

__all__ = ["OutOfMemoryError"]
