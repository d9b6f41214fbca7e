"""Inputs that are no dense tensor of samples, refused with the way to one: a ``PackedSequence`` (its
rows are the time steps of every sample together), a sparse tensor (COO, CSR: no row can be set in place),
a nested tensor, and a list or tuple of variable-length tensors, one per sample. The estimators set
features of single samples in rows of their own choosing, which none of them allows.

Examples:
    >>> import torch
    >>> check_input_kinds("inputs", torch.zeros(2, 3))  # a dense tensor: nothing to say
    >>> check_input_kinds("inputs", torch.eye(3).to_sparse())
    Traceback (most recent call last):
        ...
    TypeError: Expected argument `inputs` to be a dense tensor (layout torch.strided) but got a sparse one (layout torch.sparse_coo): ...
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

__all__ = ["check_input_kinds", "samples_hint"]

_LENGTHS = ("`additional_forward_args={'lengths': lengths}`, to a model that packs inside, forward(x, lengths) with "
            "pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False) (docs/your_model.md, Padded sequences)")
_PAD = ("pad them, x = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True), and pass their lengths, lengths = "
        f"torch.tensor([len(s) for s in seqs]), as {_LENGTHS}")


def samples_hint(tensors: Any) -> str:
    """The way from tensors of different first dimensions, when they look like one tensor per sample
    (a list or tuple of at least 2 tensors of equal rank >= 1 whose trailing dimensions agree): '' otherwise."""
    if not isinstance(tensors, (list, tuple)) or len(tensors) < 2 or not all(isinstance(t, Tensor) for t in tensors):
        return ""
    if len({t.dim() for t in tensors}) != 1 or tensors[0].dim() == 0 or len({tuple(t.shape[1:]) for t in tensors}) != 1:
        return ""
    if len({t.shape[0] for t in tensors}) == 1:
        return ""
    return (f"; if they are {len(tensors)} samples of different lengths (a list that the model pads or loops over inside), "
            f"no intervention can run rows of its own choosing through it: {_PAD}")


def check_input_kinds(name: str, inputs: Any) -> None:
    """Refuse ``inputs`` (a tensor, a tuple of tensors, or what a user passed instead) that are no dense
    tensors of samples, naming the parameter and the way to one; return ``None`` otherwise.

    Args:
        name: the caller's parameter, for the messages.
        inputs: the inputs as given.

    Raises:
        TypeError: a ``PackedSequence``, or a sparse or nested tensor (alone or in a list or tuple). A list or
            tuple of one variable-length tensor per sample passes here: its callers' refusals add :func:`samples_hint`.
    """
    if isinstance(inputs, PackedSequence):
        raise TypeError(
            f"Expected argument `{name}` to be a tensor [N, ...] or a tuple of them but got a PackedSequence, whose rows "
            f"are the time steps of all samples together, which no intervention can split into samples: {_PAD}; in a "
            "callback, a collate_fn that pads (and returns the lengths) instead of packing")
    several = isinstance(inputs, (tuple, list))
    for i, t in enumerate(inputs if several else (inputs,)):
        if not isinstance(t, Tensor):
            continue
        which = f"`{name}` (tensor {i})" if several else f"`{name}`"
        if t.is_nested:
            raise TypeError(f"Expected argument {which} to be a dense tensor but got a nested tensor (samples of different "
                            f"lengths), which no intervention can set row by row: pad it, x = torch.nested.to_padded_tensor(nt, "
                            f"0.0), and pass the lengths, lengths = torch.tensor([len(s) for s in nt.unbind()]), as {_LENGTHS}")
        if t.layout != torch.strided:
            raise TypeError(
                f"Expected argument {which} to be a dense tensor (layout torch.strided) but got a sparse one (layout "
                f"{t.layout}): the estimators set single features (the words of a bag of words) in rows of their own, "
                "which sparse tensors do not allow; pass x.to_dense() (a model that needs a sparse tensor converts inside, "
                "x.to_sparse())")
