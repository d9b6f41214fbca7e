"""Parameters a forward pass writes where a module initialises itself on its first call: Glow's ActNorm sets its
``loc`` and ``scale`` from the batch's mean and deviation (``self.loc.data.copy_(-x.mean(0))``, or
``self.loc.data = ...``), then sets a flag (a buffer, ``self.initialized.fill_(True)``, or a plain bool attribute). The
audits restore the flag (``audit_mode``'s buffers, ``kept_attributes``), so an audit's passes must put back the
parameters too: :func:`init_writes_kept`. Writes through ``.data`` bypass the version counter, so the values are
compared; so are a LoRA layer's, merging its update in ``train(False)`` or in an eval-mode ``forward``; the modules
watched are the ones such an initialisation needs, of a class of the user's own holding a falsy
flag named for it (a one-element buffer equal to 0, or an attribute ``False`` or ``0``, whose name holds ``init``): a
model without one costs nothing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

import torch
from torch import Tensor, nn

__all__ = ["init_writes_kept", "outermost_copies", "uninitialised_params"]


def _falsy_flag(m: nn.Module) -> bool:
    """Whether ``m`` holds a flag that says "not initialised yet": a one-element buffer equal to 0, or an attribute of
    its own that is ``False`` or the int ``0``, named for initialisation (``initialized``, ``initialised``, ``inited``,
    ``data_dep_init_done``; not every falsy flag: ``Conv2d.transposed``, ``LSTM.bidirectional``, loralib's ``merged``
    and a LightningModule's own flags would have every such module's weights copied at each audit block)."""
    if any(_names_init(k) and isinstance(b, Tensor) and b.numel() == 1 and not b.is_complex() and b.device.type != "meta"
           and bool(b == 0) for k, b in m._buffers.items()):
        return True
    return any(_names_init(k) and type(v) in (bool, int) and not v for k, v in vars(m).items())


def _own_train(m: nn.Module) -> bool:
    """Whether ``m``'s class writes its own ``train(mode)``: a loralib-style LoRA layer merges ``B @ A`` into its weight
    on ``train(False)`` (``self.weight.data += ...``, ``self.merged = True``) and takes it out on ``train(True)``; the
    audits put the modes back by the flag (and ``merged`` with the attributes), so the weight must come back too."""
    train = type(m).train
    return train is not nn.Module.train and not train.__module__.startswith(_TRAIN_WRITES_NOTHING)


#: libraries whose ``train`` overrides set flags only (transformers' ``PreTrainedModel`` sets its kernels' mode): a whole
#: Hugging Face model copied at each audit epoch would cost its size in device memory for nothing
_TRAIN_WRITES_NOTHING = ("torch.", "transformers.", "lightning.", "pytorch_lightning.")


def _merge_flag(m: nn.Module) -> bool | None:
    """The bool or int attribute of ``m``'s own named for a merged update (``merged``, ``_merged``, ``is_merged``; an
    int ``merged = 0`` or ``1`` read as a bool), else ``None``: a LoRA layer written for Lightning, which puts modes
    back by the flag without calling ``train()``, merges ``B @ A`` into its weight in its ``forward`` by
    ``self.training`` (``if not self.training and not self.merged: self.base.weight.data += ...``); the audits'
    eval-mode passes merge it there, and the flag comes back with the attributes. PEFT's ``merged`` is a property over
    a list (``merged_adapters``): PEFT merges on request only. A merge state held otherwise (a counter, a string, a
    buffer) is not kept: its writes are refused (:mod:`~lightning_causal.causal.engine.param_writes`)."""
    flags = [bool(v) for k, v in vars(m).items() if "merged" in k.lower() and type(v) in (bool, int)]
    return flags[0] if flags else None


def _names_init(name: str) -> bool:
    """Whether an attribute's ``name`` says initialisation (``initialized``, ``_inited``, ``data_dep_init_done``)."""
    return "init" in name.lower()


def uninitialised_params(model: nn.Module) -> list[nn.Parameter]:
    """The parameters (each once) held directly by the modules of ``model`` whose class is not torch's own and that
    hold a falsy flag (:func:`_falsy_flag`): those a data-dependent initialisation on the first pass would write; or
    that write their own ``train`` (:func:`_own_train`) with a module below them in train mode: every parameter below
    them, which a mode switch may write (a LoRA layer merging its update into its own weight or its wrapped layer's);
    or that hold a ``merged`` flag (:func:`_merge_flag`) with a module below them in train mode or the flag ``False``:
    every parameter below them where they hold two parameters of their own or more (a LoRA layer's A and B, merged into
    its own weight, its wrapped layer's or one deeper), else those their children hold, which an eval-mode pass may
    merge into, and their own.

    Examples:
        >>> class ActNorm(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.loc = nn.Parameter(torch.zeros(2))
        ...         self.register_buffer("initialized", torch.tensor(False))
        >>> [tuple(p.shape) for p in uninitialised_params(nn.Sequential(ActNorm(), nn.Linear(2, 3), nn.BatchNorm1d(3)))]
        [(2,)]
    """
    seen: dict[int, nn.Parameter] = {}
    for m in model.modules():
        if type(m).__module__.startswith("torch."):
            continue
        flag = _merge_flag(m)
        may_write = flag is False or any(sub.training for sub in m.modules())  # a mode switch, or a layer not merged
        if _own_train(m) and may_write:  # eval() may write any parameter below it
            held: Iterable[Tensor] = m.parameters()  # (a wrapper merging into its self.base.weight, torch's nn.Linear)
        elif flag is not None and may_write and sum(p is not None for p in m._parameters.values()) >= 2:
            # a LoRA layer holding its update (A and B; not one parameter beside an unrelated flag, a LightningModule's
            # CLIP-style logit_scale): an eval-mode pass merges it into its own weight
            # (loralib's), its wrapped layer's (self.base.weight) or one deeper (self.block[0].weight): every parameter
            # below it
            held = m.parameters()
        elif flag is not None and may_write:
            # a module holding fewer than two parameters of its own: those and its children's (self.base.weight, a
            # LoRA's own weight beside A and B held as child Linears), not a whole model
            # below an unrelated `merged` flag (a LightningModule's) copied at each audit; a merge written deeper is
            # refused (engine/param_writes)
            held = [*m._parameters.values(), *(p for c in m.children() for p in c._parameters.values())]
        elif m._parameters and _falsy_flag(m):
            held = m._parameters.values()
        else:
            continue
        for p in held:
            if isinstance(p, Tensor) and not p.is_inference() and p.device.type != "meta":
                seen.setdefault(id(p), p)
    return list(seen.values())


@contextlib.contextmanager
def init_writes_kept(model: nn.Module) -> Iterator[None]:
    """Put back, after the block (also on exceptions), the parameters of ``model`` that a data-dependent
    initialisation wrote inside (:func:`uninitialised_params`): the very tensors, their storage where a pass replaced
    it (``p.data = ...``) and their values where it wrote in place (``p.data.copy_(...)``). An audit of a flow never
    trained would otherwise leave ActNorm holding the probe's statistics beside a flag that says it is not
    initialised: a checkpoint or a comparison of ``state_dict()`` after the audit would see them.

    The outermost block open copies a parameter once; a block inside it (an estimator's inside an audit's, an audit's
    inside the callback's ``no_trace``) shares that copy where the parameter still holds its storage and values, and
    copies it again only where a pass wrote it since (an ActNorm initialised by the outer block's own pass, whose flag
    the inner block leaves set): a LoRA model's parameters are copied once per audit, not once per nested block.

    Args:
        model: the model.

    Examples:
        >>> class ActNorm(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.loc, self.initialized = nn.Parameter(torch.zeros(2)), False
        ...     def forward(self, x):
        ...         if not self.initialized:
        ...             self.loc.data.copy_(-x.mean(0))
        ...             self.initialized = True
        ...         return x + self.loc
        >>> act = ActNorm()
        >>> with init_writes_kept(act):
        ...     _ = act(torch.tensor([[1.0, 3.0]]))
        ...     act.loc.tolist()
        [-1.0, -3.0]
        >>> act.loc.tolist()
        [0.0, 0.0]
    """
    params = uninitialised_params(model)
    if not params:  # the usual model costs nothing
        yield
        return
    with outermost_copies(_KEPT) as held:
        kept, owned = [], []
        for p in params:
            outer = held.get(id(p))
            if outer is not None and not _replaced(p, outer[0]) and torch.equal(p.data, outer[1]):
                data, copy = outer  # as the outer block found it: its copy serves (no second copy of a LoRA model)
            else:  # written since the outer block began (a pass initialised it): this block's own copy
                data, copy = p.data, p.detach().clone()
                if outer is None:
                    held[id(p)] = data, copy
                    owned.append(id(p))
            kept.append((p, data, copy))
        try:
            yield
        finally:
            try:
                for p, data, copy in kept:
                    if _replaced(p, data):
                        p.data = data  # a pass replaced the storage (`self.loc.data = ...`): the very tensor back
                    if not torch.equal(p.data, copy):
                        p.data.copy_(copy)
            finally:
                for key in owned:
                    del held[key]


@contextlib.contextmanager
def outermost_copies(var: ContextVar[dict | None]) -> Iterator[dict]:
    """The copies the outermost open block of ``var`` holds, by key: a new dict, set in ``var`` for this block (the
    outermost) and unset after it, also on exceptions, or the open block's, which the blocks inside share (each
    removes the keys it added). The one frame of :func:`init_writes_kept` and ``state.renorms_kept``.

    Examples:
        >>> var = ContextVar("copies", default=None)
        >>> with outermost_copies(var) as outer:
        ...     with outermost_copies(var) as inner:
        ...         inner is outer
        True
        >>> var.get() is None
        True
    """
    held = var.get()
    if held is not None:
        yield held
        return
    held = {}
    token = var.set(held)
    try:
        yield held
    finally:
        var.reset(token)


def _replaced(p: Tensor, data: Tensor) -> bool:
    """Whether ``p`` no longer holds the storage ``data`` (``self.loc.data = ...``)."""
    return p.data.data_ptr() != data.data_ptr() or p.shape != data.shape or p.dtype != data.dtype


#: the copies the outermost :func:`init_writes_kept` block open now made (by the parameter's ``id``: its storage and
#: its values), which the blocks inside it share where the parameter still holds them
_KEPT: ContextVar[dict[int, tuple[Tensor, Tensor]] | None] = ContextVar("lightning_causal_init_writes_kept", default=None)
