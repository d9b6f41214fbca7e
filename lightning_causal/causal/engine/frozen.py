"""A model frozen for reading: the copies the backdoor code keeps beside the model it trains or explains (the repair
term's consistency reference, Feature Shift Tuning's shifted copy) run in eval mode, train nothing and keep the
quantization scales they were made with."""

from __future__ import annotations

from torch import nn

from lightning_causal.causal.engine.lazy_modules import check_built
from lightning_causal.causal.engine.state import observers_off

__all__ = ["freeze"]


def freeze(model: nn.Module) -> nn.Module:
    """``model`` frozen in place and returned: eval mode, no parameter requiring a gradient, and the observers of a
    quantization-aware model's fake-quant modules off (:func:`~lightning_causal.causal.engine.state.observers_off`:
    they would move its ranges and scales with every batch it runs, in eval mode too; it quantizes with the scales it
    holds).

    Args:
        model: the model to freeze (a copy the caller owns: it is changed, not copied).

    Examples:
        >>> import torch.ao.quantization as tq
        >>> net = nn.Sequential(nn.Linear(2, 2), tq.FakeQuantize())
        >>> frozen = freeze(net)
        >>> frozen is net, net.training, any(p.requires_grad for p in net.parameters()), int(net[1].observer_enabled)
        (True, False, False, 0)
    """
    check_built(model)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    observers_off(model)
    return model
