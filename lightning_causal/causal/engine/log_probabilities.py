"""A model that returns log-probabilities (it ends in ``nn.LogSoftmax``, as braindecode's EEG models and
torchvision-era MNIST examples trained with ``F.nll_loss`` do) explained on its raw output
(:func:`warn_saturated_log_probs`).

The estimators explain the explained class's score ``f_t``. Of logits that is ``z_t``; of log-probabilities it is
``log p_t = z_t - logsumexp(z)``, which saturates at 0 where the model is confident: a sample's class at
``p = 0.9997`` (a margin of 8) keeps ``log p_t`` within ``log K`` of 0 (0.69 of two classes) through every change that leaves it the most probable
class, however far the change moves its logit. Effects of confident samples then shrink towards 0 and what the decision
depends on ranks low (a trained ShallowConvNet's temporal filters: 8e-5 on its log-probabilities, 1.26 on its centred
logits). Centring gives the logits back exactly, up to the shift softmax ignores: ``log_softmax(z) - mean(log_softmax(z))
= z - mean(z)``.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

from lightning_causal.causal.engine.batching import kinded
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["CENTRED_LOGITS", "SATURATED_P", "log_probability_rows", "warn_saturated_log_probs"]

#: the ``output=`` that gives a log-probability model's logits back, centred (the same softmax)
CENTRED_LOGITS = "output=lambda out: out - out.mean(1, keepdim=True)"

#: the probability of the explained class from which its log-probability is taken for saturated (within 0.01 of 0)
SATURATED_P = 0.99


def log_probability_rows(out: Tensor) -> bool:
    """Whether every row of ``out`` ``[N, K >= 2]`` holds log-probabilities: entries at most 0 and each row's
    logsumexp 0, to the rounding of its dtype (a float16 LogSoftmax's rows too). Rounding each ``log p_k`` by a
    relative ``eps`` moves the logsumexp by at most ``eps`` times the row's entropy, ``<= eps log K``: the tolerance
    grows as ``1 + log K``, not as ``K`` (by ``K``, a float32 row of 1000 scores at 0 and -10, an energy model's
    ``-relu``, was taken for log-probabilities: its logsumexp 0.044 within 0.1).

    Examples:
        >>> z = torch.tensor([[2.0, 0.0, -1.0]])
        >>> log_probability_rows(z.log_softmax(1)), log_probability_rows(-z.relu())
        (True, False)
    """
    tol = max(1e-4, 8 * torch.finfo(out.dtype).eps) if out.is_floating_point() else 0.0
    if not bool((out <= tol).all()):
        return False
    lse = torch.logsumexp(out.double(), 1)
    return bool((lse.abs() <= tol * (1.0 + math.log(out.shape[1]))).all())


def warn_saturated_log_probs(output_spec: object, out: Tensor, idx: Tensor, what: str) -> bool:
    """Warn where the model's own output (``output_spec`` ``None``: no ``output=`` chosen) holds log-probabilities and
    a quarter of the explained rows or more hold their class at ``p >= 0.99`` (:data:`SATURATED_P`), naming
    :data:`CENTRED_LOGITS`; an ``output=`` of the user's, the identity ``lambda out: out`` included, is theirs and
    silences it. Returns whether it warned.

    Args:
        output_spec: the caller's ``output=``.
        out: the clean output ``[N, K]``.
        idx: the explained class of each row ``[N]``.
        what: the estimator's action, named in the warning.

    Examples:
        >>> z = torch.tensor([[9.0, 0.0], [0.0, 9.0]])
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_saturated_log_probs(None, z.log_softmax(1), torch.tensor([0, 1]), "It")
        True
        >>> warn_saturated_log_probs(None, z, torch.tensor([0, 1]), "It")  # logits: nothing to say
        False
    """
    if output_spec is not None or not isinstance(out, Tensor) or out.dim() != 2 or out.shape[1] < 2 \
            or out.shape[0] == 0 or not out.is_floating_point():
        return False
    with torch.no_grad():
        out = out.detach()
        if not log_probability_rows(out):
            return False
        saturated = int((out.gather(1, idx.view(-1, 1).to(out.device)).squeeze(1) >= math.log(SATURATED_P)).sum())
    n = out.shape[0]
    if saturated == 0 or 4 * saturated < n:
        return False
    warnings.warn(kinded(  # its count of samples changes between a fit's audit epochs: the callback shows it once a fit
        f"The model returns log-probabilities (every row of its output [{n}, {out.shape[1]}] is at most 0 and its "
        f"logsumexp is 0: a LogSoftmax at its end, trained with F.nll_loss) and {what} explains the log-probability of "
        f"each sample's class, which saturates at 0: {saturated} of {n} samples hold their class at p >= {SATURATED_P}, "
        f"where a change that leaves it the most probable class moves its log-probability by less than log {out.shape[1]} = "
        f"{math.log(out.shape[1]):.2f} (the class keeps p >= 1/{out.shape[1]}), however far "
        "it moves the logit, so their effects shrink towards 0 and inputs or units that the decision depends on rank "
        f"low. Explain the logits: `{CENTRED_LOGITS}` gives them exactly (log_softmax(z) minus its mean is z minus its "
        "mean, the same softmax); `output=lambda out: out` keeps the log-probabilities and silences this",
        "log-probabilities explained"), stacklevel=outside_package())
    return True
