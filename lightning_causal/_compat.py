"""Names that moved between the supported dependency versions (the floors in pyproject.toml).

Imports only torch, so that the pure-PyTorch core (``lightning_causal.causal``) may use it. Use these names instead
of the newer spellings; ``tests/test_compat.py`` checks that the library does not name the newer ones elsewhere.
"""

import torch

_TORCH = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])

#: ``torch.OutOfMemoryError`` (torch >= 2.5, the device-generic class) where it exists, else
#: ``torch.cuda.OutOfMemoryError`` (torch 2.2 - 2.4): on torch >= 2.5 the two are one class.
OutOfMemoryError: type[RuntimeError] = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)



def is_autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for the device type ``device_type`` (``"cpu"``, ``"cuda"``, ...):
    ``torch.is_autocast_enabled(device_type)`` from torch 2.4; before, where that takes no argument and
    answers for CUDA only, the per-device function (``torch.is_autocast_cpu_enabled``, ...).

    Examples:
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     is_autocast_enabled("cpu"), is_autocast_enabled("cuda")
        (True, False)
        >>> is_autocast_enabled("cpu")
        False
    """
    if _TORCH >= (2, 4):
        return torch.is_autocast_enabled(device_type)
    return _is_autocast_enabled_before_2_4(device_type)


def _is_autocast_enabled_before_2_4(device_type: str) -> bool:
    if device_type == "cuda":
        return torch.is_autocast_enabled()
    enabled = getattr(torch, f"is_autocast_{device_type}_enabled", None)  # cpu, xpu, ipu, hpu, xla
    return bool(enabled()) if enabled is not None else False


__all__ = ["OutOfMemoryError", "is_autocast_enabled"]
