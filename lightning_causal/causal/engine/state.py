"""Leave-no-trace helpers: evaluation mode with every submodule's flag restored, target selection,
and a guard for the global random number generators."""

from __future__ import annotations

import contextlib
import functools
import random
import types
import warnings
import weakref
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.ao.quantization.fake_quantize import FakeQuantizeBase

from lightning_causal._compat import with_note
from lightning_causal.causal.engine.batching import first_in_block, remembered_fit, said_in_block
from lightning_causal.causal.engine.checks import ranks_hint
from lightning_causal.causal.engine.chosen_input import model_name
from lightning_causal.causal.engine.eager import force_eager
from lightning_causal.causal.engine.generators import generators_registered
from lightning_causal.causal.engine.init_writes import _TRAIN_WRITES_NOTHING as _LIBRARY
from lightning_causal.causal.engine.init_writes import init_writes_kept, outermost_copies
from lightning_causal.causal.engine.inner_steps import inner_steps_kept
from lightning_causal.causal.engine.input_kinds import check_input_kinds, samples_hint
from lightning_causal.causal.engine.kept_attributes import buffer_of, keep_attributes
from lightning_causal.causal.engine.layer_calls import SHAPE_LAYERS, LayerCalls, open_recorder
from lightning_causal.causal.engine.lazy_modules import check_built
from lightning_causal.causal.engine.param_writes import param_writes_refused
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["frozen_params", "audit_mode", "float32_exact", "eval_mode", "is_fake_quant", "renorms_kept", "observer_on", "observers_off", "rnn_backward", "check_logits", "check_one_logit", "ONE_LOGIT_ROWS", "ends_in_sigmoid", "rows_sum_to_one", "gather_target", "output_fix", "listed_target", "level_target", "resolve_target", "rng_preserved", "as_tuple",
           "inputs_type_error", "model_devices"]

Target = int | list[int] | Tensor | None


def inputs_type_error(name: str, inputs: Any) -> TypeError:
    """The ``TypeError`` for ``inputs`` that are no tensor or tuple of tensors, with the way from a
    list (a tuple) or a mapping (a wrapper whose ``forward`` takes the tensors)."""
    fix = ""
    if isinstance(inputs, list) and inputs and all(isinstance(t, Tensor) for t in inputs):
        fix = samples_hint(inputs) or f"; pass the inputs as a tuple, tuple({name})"
    elif isinstance(inputs, Mapping):
        keys = ", ".join(str(k) for k in list(inputs)[:4])
        fix = (f"; for a model that takes one mapping, wrap it in a module whose forward takes the tensors, "
               f"forward(self, {keys}): return self.model({{...}}), and pass them as a tuple")
    return TypeError(f"Expected argument `{name}` to be a tensor or a tuple of tensors but got {type(inputs)}{fix}")


def as_tuple(inputs: Tensor | tuple[Tensor, ...], name: str = "inputs") -> tuple[Tensor, ...]:
    """Validate ``inputs`` (a tensor or a non-empty tuple of tensors sharing the first dimension).

    Args:
        inputs: a tensor ``[N, ...]`` or a tuple of them (``N >= 1``, not on the meta device).
        name: the caller's parameter, for the error messages.

    Examples:
        >>> import torch
        >>> [t.shape for t in as_tuple(torch.zeros(2, 3))]
        [torch.Size([2, 3])]
        >>> as_tuple((torch.zeros(2, 3), torch.zeros(3)))
        Traceback (most recent call last):
            ...
        ValueError: Expected all tensors of `inputs` to share the first dimension but got [2, 3]
    """
    check_input_kinds(name, inputs)  # a PackedSequence, a sparse or nested tensor: the way to a dense one
    tensors = inputs if isinstance(inputs, tuple) else (inputs,)
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise inputs_type_error(name, inputs)
    if any(t.is_meta for t in tensors):
        raise ValueError(f"Expected argument `{name}` to hold data but got a tensor on the meta device (a shape without values)")
    if any(t.dim() == 0 for t in tensors):  # one number: no samples dimension (not an empty batch)
        raise ValueError(f"Expected argument `{name}` to have a batch dimension [N, ...] but got a 0-d tensor; one sample "
                         "is x.unsqueeze(0)")
    n = tensors[0].shape[0]
    if n == 0:
        raise ValueError(f"Expected argument `{name}` to hold at least one sample but got none (a first dimension of 0)")
    if any(t.shape[0] != n for t in tensors):
        raise ValueError(
            f"Expected all tensors of `{name}` to share the first dimension but got {[t.shape[0] for t in tensors]}"
            + samples_hint(tensors))
    return tensors


def model_devices(model: nn.Module) -> list[int]:
    """Indices of the CUDA devices holding ``model``'s parameters or buffers, plus the current CUDA
    device when CUDA is initialised: the generators a forward pass of the model may draw from."""
    # a buffer reassigned during a torch.fx trace is a Proxy, no tensor: only tensors have a device
    tensors = [*model.parameters(), *(b for b in model.buffers() if isinstance(b, Tensor))]
    devices = {t.device.index for t in tensors if t.device.type == "cuda"}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        devices.add(torch.cuda.current_device())
    return sorted(d for d in devices if d is not None)


@contextlib.contextmanager
def audit_mode(model: nn.Module, grad: bool = False, rng: bool = True, watch_writes: bool = True) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode (and ``torch.no_grad`` unless ``grad``), then restore every
    submodule's ``training`` flag and every buffer, also on exceptions: a buffer that the model
    updates in each forward pass whatever its mode (a call counter, an enabled quantisation
    observer's running range) ends as it began, the very tensor with its values, and so does a tensor
    kept as a plain attribute (a recurrent state carried across batches, ``self.h = h.detach()``:
    :mod:`~lightning_causal.causal.engine.kept_attributes`), and so does a number, string, bool or ``None`` attribute a
    forward pass sets (a call counter, ``self.calls += 1``; a mode, ``self.mode = "long"``; also a numpy array or a set,
    updated in place too, ``self.mean += m``, ``self.seen.add(k)``, or a dict of them, ``self.stats["n"] += 1``), and one it creates (``if not hasattr(self, "calls")``) is removed, as the
    callback's ``no_trace`` does, and so does the weight of an ``nn.Embedding`` or ``nn.EmbeddingBag`` built with
    ``max_norm=``, which every pass renormalises in place where it looks rows up (:func:`renorms_kept`), and so do the
    parameters a module initialises from its first batch beside a flag saying it has not yet (Glow's ActNorm,
    ``self.loc.data.copy_(-x.mean(0))``: :func:`~lightning_causal.causal.engine.init_writes.init_writes_kept`), and so do the
    parameters an optimizer stepped inside forward, its state and the parameters' ``.grad`` (test-time adaptation, TENT;
    a forward that leaves them changed is refused: :func:`~lightning_causal.causal.engine.inner_steps.inner_steps_kept`); the global random
    generators too (:func:`rng_preserved` on the CPU and the model's CUDA devices): a model that
    draws noise in eval mode (MC dropout kept on) leaves the caller's streams where they were
    (``rng=False`` for a wrapper around each of many calls, whose caller restores them once: each
    call must draw fresh noise, not the same), and the generators the model holds itself
    (:mod:`~lightning_causal.causal.engine.generators`: ``self.gen = torch.Generator()``), which the
    noise checks watch inside. Float32 products run at full precision inside (:func:`float32_exact`), whatever
    ``torch.set_float32_matmul_precision`` says outside, which is put back. Compiled code runs eagerly inside, so that
    interventions on ``torch.compile``'d models take effect
    (:func:`~lightning_causal.causal.engine.eager.force_eager`). A pass that runs the device out of memory
    inside is remembered until the outermost ``audit_mode`` ends: the later computations start at the size that fit
    (:func:`~lightning_causal.causal.engine.batching.remembered_fit`). A quantization-aware model's fake-quant
    modules (``prepare_qat``) quantize with the scales they hold, their observers off inside (:func:`observers_off`):
    an enabled observer updates its range and scale at every pass, in eval mode too, so a sample's output would
    depend on the rows that ran before it and beside it. A model holding a lazy module not built yet is refused
    (:func:`~lightning_causal.causal.engine.lazy_modules.check_built`): the first pass inside would build it.

    Args:
        model: the model.
        grad: keep autograd on inside (``False``: ``torch.no_grad``).
        rng: restore the global random generators on exit, as above.
        watch_writes: refuse the values a pass wrote into the parameters of the user's modules and no block put back
            (:func:`~lightning_causal.causal.engine.param_writes.param_writes_refused`, a fingerprint of each parameter
            on entry and exit); ``False`` for a block run at each training step with the parameters frozen
            (``BackdoorSuppressionTerm``'s trigger search), where the two passes over the model's parameters would
            cost every step.

    Examples:
        >>> m = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
        >>> m[0].eval()  # doctest: +ELLIPSIS
        Linear(...)
        >>> with audit_mode(m):
        ...     m.training, m[1].training
        (False, False)
        >>> m.training, m[0].training, m[1].training
        (True, False, True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected argument `model` to be a torch.nn.Module but got {type(model)}")
    if not isinstance(watch_writes, bool):
        raise TypeError(f"Expected argument `watch_writes` to be a bool but got {watch_writes!r}")
    check_built(model, audited=True)  # a lazy module not built: the first pass inside would build it (lazy_modules)
    modes = [(m, m.training) for m in model.modules()]
    buffers, attributes = _kept_buffers(model), keep_attributes(model, numbers=True, helpers=True)  # a call counter too
    grad_ctx = rnn_backward(model) if grad else torch.no_grad()
    try:
        # an optimizer stepped by forward (test-time adaptation): its parameters put back, a forward keeping them refused
        # the values written and not put back by the blocks inside (a LoRA layer merging by an int counter) refused
        watched = param_writes_refused(model) if watch_writes else contextlib.nullcontext()
        with watched, init_writes_kept(model), inner_steps_kept(model):
            eval_mode(model)
            observers_off(model)
            with grad_ctx, force_eager(), rng_preserved(model_devices(model)) if rng else contextlib.nullcontext(), \
                    generators_registered(model, restore=rng), remembered_fit(), renorms_kept(model), float32_exact():
                yield model
    except RuntimeError as err:
        _note_wrapper_backward(model, err)
        raise
    finally:
        for m, mode in modes:
            m.training = mode
        _restore_buffers(buffers)
        attributes.restore()


# the operations whose float32 products `torch.set_float32_matmul_precision("medium"/"high")` or their own
# `fp32_precision` (torch 2.9 or later; "none" takes the backend's or torch.backends' own, which may be lowered) lower to
# bfloat16 or TF32, and torch.backends' own where set lowered (""); cuDNN's convolutions (TF32 by torch's default) are left
_FP32_SITES = ("", "mkldnn.matmul", "mkldnn.conv", "mkldnn.rnn", "cuda.matmul")


def _fp32_site(name: str) -> Any:
    """The object of ``torch.backends`` whose ``fp32_precision`` ``name`` sets (``""``: ``torch.backends`` itself)."""
    site: Any = torch.backends
    for part in filter(None, name.split(".")):
        site = getattr(site, part, None)
    return site


def _matmul_precision() -> str | None:
    """``torch.get_float32_matmul_precision()``, or ``None`` where torch refuses to answer (the backends' own
    ``fp32_precision`` set to a state the global setting cannot name)."""
    try:
        return torch.get_float32_matmul_precision()
    except RuntimeError:
        return None


def _set_matmul_precision(value: str) -> None:
    with warnings.catch_warnings():  # torch 2.9 says the global setting is to be deprecated: the user's own call said so
        warnings.simplefilter("ignore")
        torch.set_float32_matmul_precision(value)


@contextlib.contextmanager
def float32_exact() -> Iterator[None]:
    """Float32 matrix products (and oneDNN's convolutions and recurrent layers) at full precision inside, the settings
    put back on exit, also on exceptions. ``torch.set_float32_matmul_precision("medium")`` makes a CPU's float32
    products bfloat16 ones (oneDNN) and ``"high"``/``"medium"`` a GPU's TF32 ones, whose rounding changes with the
    rows that share a pass: effects of intervened rows stacked in one pass would differ from those of the rows run
    alone, by up to 1e-1 on a logit, and every number would hold that rounding. The audits, like those of a
    ``precision="bf16-mixed"`` fit that run outside autocast, compute in float32; training keeps its settings.
    The global setting goes to ``"highest"`` inside with the operations' own ``fp32_precision`` (torch 2.9 or later)
    to ``"ieee"``, so that the two agree (torch refuses ``torch.backends.cuda.matmul.allow_tf32`` where they do not);
    a block inside another changes nothing, and the outermost puts back what it found.

    Examples:
        >>> before = torch.get_float32_matmul_precision()
        >>> a = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
        >>> full = a @ a
        >>> torch.set_float32_matmul_precision("medium")
        >>> with float32_exact():
        ...     exact = a @ a
        >>> torch.equal(exact, full), torch.get_float32_matmul_precision()
        (True, 'medium')
        >>> torch.set_float32_matmul_precision(before)
    """
    legacy = _matmul_precision()
    sites = [site for site in map(_fp32_site, _FP32_SITES) if hasattr(site, "fp32_precision")]  # none before torch 2.9
    found = [(site, site.fp32_precision) for site in sites]
    try:
        if legacy not in (None, "highest"):
            _set_matmul_precision("highest")
        for site, value in found:  # torch.backends' "none" is no setting; an operation's takes a lowered one above it
            if value != "ieee" and (site is not torch.backends or value != "none"):
                site.fp32_precision = "ieee"
        yield
    finally:
        if legacy not in (None, "highest"):
            _set_matmul_precision(legacy)  # sets the matmuls' own too: every value found is put back after it
        for site, value in found:
            if site.fp32_precision != value:
                site.fp32_precision = value


@dataclass
class _Renormed:
    """A weight an ``nn.Embedding(max_norm=...)`` renormalises in place, or a user's layer constrains in its forward,
    as a :func:`renorms_kept` block found it: ``copy`` its values, ``clean`` the version counter of the weight when it
    last held them; ``data`` a layer's weight's ``.data`` (its storage), else ``None``."""

    weight: Tensor
    copy: Tensor
    clean: int
    data: Tensor | None = None

    def put_back(self) -> None:
        """Copy the values back where a pass changed the weight since it last held them (the very tensor); a layer's
        where they differ, into its own storage: ``self.weight.data = torch.renorm(...)`` (a new storage) and a write
        through ``.data`` leave the version counter as it was (a weight left as it was is not written: a graph holding
        it can still run backward)."""
        if self.data is not None:
            with torch.no_grad():
                if self.weight.data_ptr() != self.data.data_ptr() or self.weight.shape != self.data.shape:
                    self.weight.data = self.data
                if not torch.equal(self.weight, self.copy):
                    self.weight.copy_(self.copy)
        elif self.weight._version != self.clean:
            with torch.no_grad():
                self.weight.copy_(self.copy)
            self.clean = self.weight._version


#: the weights the outermost :func:`renorms_kept` block open now has copied (by ``id``), which blocks inside it share
_RENORMED: ContextVar[dict[int, _Renormed] | None] = ContextVar("lightning_causal_renormed_weights", default=None)


def _renorm_weights(model: nn.Module) -> dict[int, tuple[Tensor, bool]]:
    """The weights of ``model``'s ``nn.Embedding``/``nn.EmbeddingBag`` built with ``max_norm=``, and the parameters of
    its layers of a user's class deriving from one of ``torch.nn`` and overriding its ``forward`` (:func:`_own_layer`),
    by ``id`` (a tied one once), each with whether it is a layer's."""
    found: dict[int, tuple[Tensor, bool]] = {}
    for m in model.modules():
        if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.max_norm is not None:
            weights, layer = [m.weight], False
        elif m._parameters and _own_layer(type(m)):
            weights, layer = list(m._parameters.values()), True
        else:
            continue
        for w in weights:
            if isinstance(w, Tensor) and not isinstance(w, nn.parameter.UninitializedParameter) \
                    and w.device.type != "meta" and not w.is_inference():
                found.setdefault(id(w), (w, layer))
    return found


@functools.cache
def _own_layer(cls: type) -> bool:
    """Whether ``cls`` is a user's class deriving from a layer of ``torch.nn`` and overriding its ``forward`` with one
    that writes its weight (through ``.data`` or ``copy_``, in it or in a method of the user's it calls): a
    max-norm constraint layer (EEGNet's ``Conv2dWithConstraint``, ``LinearWithConstraint``) writes its weight in each
    forward (``self.weight.data = torch.renorm(self.weight.data, p=2, dim=0, maxnorm=self.max_norm)``), in eval mode
    too."""
    if cls.__module__.startswith(_LIBRARY):
        return False
    # the first layer class of torch.nn it derives from (not a mixin such as LazyModuleMixin, which has no forward)
    base = next((b for b in cls.__mro__[1:] if issubclass(b, nn.Module) and b.__module__.startswith("torch.nn.")
                 and b is not nn.Module), None)
    if base is None or cls.forward is base.forward:
        return False
    # a forward that writes its weight (through `.data`, or `copy_`), in the user's classes' forwards or the methods of
    # theirs they call (`self._constrain()`, a subclass calling `super().forward`): a layer that only reshapes or
    # standardises its weight writes nothing, and copying it per audit block would cost its memory and a comparison per
    # block for nothing; a write elsewhere is refused by param_writes, not passed silently
    users = [k for k in cls.__mro__[:cls.__mro__.index(base)] if not k.__module__.startswith(("torch.", *_LIBRARY))]
    own = {f for k in users for f in vars(k).values() if isinstance(f, types.FunctionType)}
    forwards = [vars(k)["forward"] for k in users if isinstance(vars(k).get("forward"), types.FunctionType)]
    called = [f for f in own for fw in forwards if f.__name__ in fw.__code__.co_names]
    return any({"data", "copy_"} & set(f.__code__.co_names) for f in (*forwards, *called))


@contextlib.contextmanager
def renorms_kept(model: nn.Module) -> Iterator[None]:
    """Put back, after the block, the weight of every ``nn.Embedding`` and ``nn.EmbeddingBag`` of ``model`` built
    with ``max_norm=``: their forward renormalises the rows it looks up IN PLACE (``torch.embedding_renorm_``, in eval
    mode and under ``no_grad`` too), so an audit's passes (a baseline id training never looks up, the probe's ids)
    would change the trained weight: another checkpoint, and other weights after the next optimizer steps (momentum
    and weight decay move a row whenever it was renormalised). The weights are the very tensors (optimizers hold them).

    The outermost block open copies a weight once (the weight's memory, once per audit); a block inside it (an
    estimator's, one per chunk of rows: ``ClassProbability``'s calls) copies nothing and starts and ends on the
    values the outermost one copied, which it copies back only where a pass changed them (the version counter): every
    block's passes see the weight as trained, as a chunk run alone would (a renormalised row, renormalised again, can
    differ in its last bits).

    Args:
        model: the model.

    Examples:
        >>> emb = nn.Embedding(3, 2, max_norm=1.0)
        >>> with torch.no_grad():
        ...     _ = emb.weight.copy_(torch.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]]))
        >>> with renorms_kept(emb):
        ...     _ = emb(torch.tensor([0]))  # renormalises row 0 to norm 1
        ...     emb.weight[0].tolist()
        [0.6000000238418579, 0.800000011920929]
        >>> emb.weight[0].tolist()
        [3.0, 4.0]
    """
    weights = _renorm_weights(model)
    if not weights and _RENORMED.get() is None:  # nothing to keep, no block open: the usual model costs nothing more
        yield
        return
    with outermost_copies(_RENORMED) as held:  # the outermost block's: blocks inside share its copies
        owned = [key for key in weights if key not in held]
        for key in owned:
            w, layer = weights[key]
            held[key] = _Renormed(w, w.detach().clone(), w._version, w.data if layer else None)
        kept = [held[key] for key in weights]
        try:
            for key in weights:  # a pass between blocks (an audit's own, outside its estimators' blocks) renormalised it
                if key not in owned:  # (a weight this block has just copied holds its copy)
                    held[key].put_back()
            yield
        finally:
            try:
                for k in kept:
                    k.put_back()
            finally:
                for key in owned:
                    del held[key]


def observers_off(model: nn.Module) -> None:
    """Switch off the observers of ``model``'s fake-quant modules (``torch.ao.quantization``'s
    ``FakeQuantizeBase``: ``prepare_qat``'s ``weight_fake_quant`` and ``activation_post_process``), which then
    quantize with the scale and zero point they hold, as the model ``convert`` makes of them would. An enabled
    observer updates its range, and the scale with it, in every forward pass whatever the mode (unlike BatchNorm,
    whose eval mode reads its running statistics), so each pass's output would depend on the batches before it
    and on the other rows of its own. The flag is the buffer ``observer_enabled``: :func:`audit_mode` restores it.

    Args:
        model: the model.

    Examples:
        >>> import torch.ao.quantization as tq
        >>> fq = tq.FakeQuantize()
        >>> observers_off(nn.Sequential(fq))
        >>> int(fq.observer_enabled), int(fq.fake_quant_enabled)
        (0, 1)
    """
    for m in model.modules():
        if is_fake_quant(m):
            m.disable_observer()  # a learnable one's (_LearnableFakeQuantize) switches its static_enabled off


def is_fake_quant(module: nn.Module) -> bool:
    """Whether ``module`` is a fake-quant module of ``torch.ao.quantization`` (``FakeQuantizeBase``: ``FakeQuantize``,
    ``FusedMovingAvgObsFakeQuantize``, the learnable ones; ``prepare_qat``'s, eager or FX, also scripted), whose observer, while on,
    updates its range and scale from the rows of every forward pass, whatever the mode.

    Args:
        module: a module.

    Examples:
        >>> import torch.ao.quantization as tq
        >>> is_fake_quant(tq.FakeQuantize()), is_fake_quant(nn.BatchNorm1d(2))
        (True, False)
        >>> is_fake_quant(torch.jit.script(tq.FakeQuantize()))
        True
    """
    if "observer_enabled" not in module._buffers:  # FakeQuantizeBase's buffer: a dict look-up spares most modules the isinstance
        return False
    if isinstance(module, torch.jit.RecursiveScriptModule):  # scripted (torch.jit.script of an FX QAT model): no class
        return callable(getattr(module, "disable_observer", None))  # to test, FakeQuantizeBase's exported method
    return isinstance(module, FakeQuantizeBase)


#: id of a fake-quant module's observer flag -> (a weak reference to it, the flags' versions, whether one is on): read
#: once per change of the flags, not once per call (a plain dict: a WeakKeyDictionary's look-up costs a reference a call)
_OBSERVING: dict[int, tuple[weakref.ref[Tensor], tuple[int, ...], bool]] = {}


def observer_on(module: nn.Module) -> bool:
    """Whether a fake-quant module's observer is on (its ``observer_enabled`` flag, and a learnable one's
    ``static_enabled``), read from the device once per change of the flags' versions (``disable_observer``,
    ``enable_observer`` and ``load_state_dict`` write them in place, which counts), not at every call: a training step may
    ask it without waiting for the device. A flag written through ``.data`` is not seen until another write.

    Args:
        module: a fake-quant module (:func:`is_fake_quant`).

    Examples:
        >>> import torch.ao.quantization as tq
        >>> fq = tq.FakeQuantize()
        >>> observer_on(fq)
        True
        >>> fq.disable_observer()
        >>> observer_on(fq)
        False
    """
    flag = buffer_of(module, "observer_enabled")
    static = buffer_of(module, "static_enabled")  # the learnable fake quant's observer
    flags = (flag, static) if isinstance(static, Tensor) else (flag,)
    if not isinstance(flag, Tensor):
        return True  # nothing to read: taken as observing
    if flag.is_inference() or (static is not None and static.is_inference()):  # no version to key on
        return any(bool(f.any()) for f in flags)
    versions = (flag._version, static._version) if len(flags) == 2 else (flag._version,)
    seen = _OBSERVING.get(id(flag))
    if seen is None or seen[0]() is not flag or seen[1] != versions:
        on = any(bool(f.any()) for f in flags)
        _OBSERVING[id(flag)] = seen = (weakref.ref(flag, functools.partial(_forget, id(flag))), versions, on)
    return seen[2]


def _forget(key: int, _: object) -> None:
    """Drop the entry of a flag that is gone (its id may be another tensor's later)."""
    _OBSERVING.pop(key, None)


def eval_mode(model: nn.Module) -> None:
    """``model.eval()``, also where the model is or holds a module that refuses it: ``torch.export``'s
    ``ExportedProgram.module()`` raises ``NotImplementedError`` on ``train()``/``eval()`` (its graph runs in the
    mode it was exported in, whatever the flag); such a module's flag, and those below it, are set directly and
    every other module's ``train(False)`` runs as its class wrote it.

    Args:
        model: the model.

    Examples:
        >>> m = nn.Sequential(nn.Dropout())
        >>> m.eval = m.train = lambda *a: (_ for _ in ()).throw(NotImplementedError("no"))  # as torch.export's
        >>> eval_mode(m)
        >>> m.training, m[0].training
        (False, False)
    """
    try:
        model.eval()
    except NotImplementedError:
        model.training = False
        for child in model.children():
            eval_mode(child)


def _note_wrapper_backward(model: nn.Module, err: RuntimeError) -> None:
    """Add a note to a backward pass's error raised by a wrapper around the user's module: Lightning
    Fabric's ``fabric.setup(model)`` under mixed precision refuses every backward pass it does not run
    ("requires you to call `fabric.backward(loss)`"), which the gradient-based estimators (the
    counterfactual search, Neural Cleanse, Captum, the attribution screens) meet without having been
    asked for one. The wrapped module (``model.module``) takes them."""
    inner = getattr(model, "module", None)
    if "backward" in str(err) and isinstance(inner, nn.Module) and inner is not model:
        with_note(
            err, f"lightning_causal: the model ({model_name(model)}) wraps another module, `model.module`, and refused the "
            "backward pass this method runs through it to its inputs (Lightning Fabric does so under mixed precision). "
            "Pass the wrapped module, `model.module`: outside the training step it needs no wrapper")


def _kept_buffers(model: nn.Module) -> list[tuple[nn.Module, str, Tensor | None, int, Tensor | None]]:
    """``(module, name, buffer, version, copy)`` of every buffer that :func:`_restore_buffers` can restore;
    a buffer registered as ``None`` (a cache or statistic the forward pass fills lazily) is kept as ``None``."""
    kept: list[tuple[nn.Module, str, Tensor | None, int, Tensor | None]] = []
    for m in model.modules():
        for name, b in m._buffers.items():
            if b is None:
                kept.append((m, name, None, 0, None))
            # a torch.fx Proxy left by a trace that reassigned the buffer is no tensor: an enclosing block restores it
            elif isinstance(b, Tensor) and not b.is_inference() and b.device.type != "meta":
                kept.append((m, name, b, b._version, b.detach().clone()))
    return kept


def _restore_buffers(kept: list[tuple[nn.Module, str, Tensor | None, int, Tensor | None]]) -> None:
    """Put back buffers a forward pass reassigned (``self.x = ...``, a ``None`` buffer filled, a torch.fx
    trace's Proxy) and undo in-place updates (``self.x += 1``)."""
    with torch.no_grad():
        for m, name, b, version, copy in kept:
            if buffer_of(m, name) is not b:
                m._buffers[name] = b
            if b is not None and b._version != version:
                b.copy_(copy)


@contextlib.contextmanager
def rnn_backward(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Let autograd run through ``model``'s recurrent layers in eval mode: cuDNN computes the backward
    pass of ``nn.RNN``/``nn.LSTM``/``nn.GRU`` in training mode only (``RuntimeError: cudnn RNN backward
    can only be called in training mode``), and the gradient paths (Captum's methods, first-order
    estimates, counterfactual search, Neural Cleanse) backpropagate in eval mode. With such a layer in
    ``model`` (and ``enabled``), cuDNN is switched off inside, so those layers run PyTorch's own
    kernels (same numbers, the outputs to rounding); its previous setting is restored on exit. A
    model without recurrent layers, and a CPU model, run as before.

    Examples:
        >>> with rnn_backward(nn.LSTM(2, 3)):
        ...     torch.backends.cudnn.enabled
        False
        >>> with rnn_backward(nn.Linear(2, 3)):
        ...     torch.backends.cudnn.enabled
        True
    """
    if not enabled or not any(isinstance(m, nn.RNNBase) for m in model.modules()):
        yield
        return
    previous = torch.backends.cudnn.enabled
    torch.backends.cudnn.enabled = False
    try:
        yield
    finally:
        torch.backends.cudnn.enabled = previous


@contextlib.contextmanager
def rng_preserved(devices: list[int] | None = None) -> Iterator[None]:
    """Save and restore the global torch (CPU and CUDA), NumPy and ``random`` RNG states.

    Args:
        devices: the CUDA devices whose generators are saved; ``None``: all visible ones.

    Examples:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> with rng_preserved():
        ...     _ = torch.rand(3)
        >>> after = torch.rand(1)
        >>> _ = torch.manual_seed(0)
        >>> torch.equal(after, torch.rand(1))
        True
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    cuda_devices = devices if devices is not None else (
        list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    )
    with torch.random.fork_rng(devices=cuda_devices):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def output_fix(outputs: Tensor) -> str:
    """How to choose what to explain from an output of more than two dimensions (per-position
    scores, a segmentation map, a one-channel field ``[N, 1, L]``): ``"pass `output=` a callable out -> [N, classes] ..."``.

    Examples:
        >>> output_fix(torch.zeros(2, 3, 4, 4))[:25]
        'pass `output=` a callable'
        >>> "out[:, :, j]" in output_fix(torch.zeros(2, 1, 128))  # a one-channel field: a point or a region of it
        True
        >>> output_fix(torch.full((2, 10, 16), -0.1))[78:115]  # squashed vectors: a capsule network's class capsules
        '`output=lambda out: out.norm(dim=-1)`'
    """
    if outputs.dim() == 3 and outputs.shape[-1] == 1:  # a forecast [N, H, 1]: averaging its horizons is no answer
        example = "`output=lambda out: out[..., 0]` for one value per horizon or step [N, H, 1], then `target=h` for horizon h"
    elif outputs.dim() == 3 and outputs.shape[1] == 1:  # one channel along L: a field, whose positions are no classes
        example = ("`output=lambda out: out[:, :, j]` for the value at position j of a one-channel field [N, 1, L] (a "
                   "neural operator's or a 1-D autoencoder's output, a denoised signal) or `out[:, :, a:b].mean(2)` for "
                   "a region's mean; `out[:, 0]` where the L values are the class scores of one position")
    elif outputs.dim() == 3:
        example = ("`output=lambda out: out.mean(1)` for per-position scores [N, T, C] averaged over positions, "
                   "`out[:, 0]` for the first position's, or `out[:, -1]` for the last position's: a causal language "
                   "model's next token, the last real one under left padding; for a forecast of quantiles [N, H, Q], "
                   "`out[..., q]` for quantile q of every horizon, then `target=h` for horizon h, not `out.mean(1)`, "
                   "which averages the horizons")
        capsules = ("`output=lambda out: out.norm(dim=-1)` for the class capsules [N, classes, D] of a capsule network, "
                    "whose lengths are the class scores (its dimension 1 holds the classes, no positions)")
        out = outputs.detach().float()  # every vector squashed, signed components: capsules first (not probabilities
        squashed = bool((out.norm(dim=-1) < 1).all() and (out < 0).any())  # per position, softmax or sigmoid, norm < 1)
        example = f"{capsules}; {example}" if squashed else f"{example}; {capsules}"
    else:
        example = ("`output=lambda out: out.mean((2, 3))` for the class scores of a segmentation map averaged over pixels; "
                   "`out.amax((2, 3))` for each class's peak of a detector's heatmap [N, K, H, W] (docs/your_model.md, "
                   "'Object detectors'); for an autoencoder's reconstruction, `out[:, :, i, j]` for a pixel or `out[:, :, 2:6, 2:6].mean((2, 3))` "
                   "for a region, whose error per sample, reading the input too, needs a wrapper model that returns it; "
                   "a Categorical over the pixels holds the classes last, `out.logits` [N, H, W, C]: "
                   "`out.logits.mean((1, 2))`")
    return (f"pass `output=` a callable out -> [N, classes] to choose what to explain (e.g. {example}; the callable "
            "gets the model's return value: `out.logits` or `out['logits']` where that is a Hugging Face output or a mapping)")


def _as_logits(outputs: Tensor) -> Tensor:
    if not isinstance(outputs, Tensor):
        raise TypeError(f"Expected the model to return a tensor but got {type(outputs)}")
    if outputs.dim() == 1:
        return outputs.unsqueeze(1)
    if outputs.dim() != 2:
        raise ValueError(
            f"Expected the model output to be [N] or [N, classes] but got shape {tuple(outputs.shape)}; {output_fix(outputs)}"
        )
    return outputs


def rows_sum_to_one(labels: Tensor) -> bool:
    """Whether every row of ``labels`` ``[N, C]`` is non-negative and sums to 1, to the rounding of
    their dtype (1e-4 for float32 and float64, 4 eps for float16 and bfloat16: 3.9e-3 and 3.1e-2, whose
    probabilities sum to 1 +- eps / 2), summed in float64 (float32 on MPS, which has no float64). One answer read back
    from the device, and no float64 copy of the rows (``sum(dtype=)`` accumulates each row in float64): the backdoor
    repair term asks at every step of soft labels. One rule for labels (`audits/label_task`) and outputs
    (:func:`check_logits`: float16 softmax rows over 10 classes sum to 1 +- 3e-4)."""
    tol = max(1e-4, 4 * torch.finfo(labels.dtype).eps) if labels.is_floating_point() else 1e-4
    lab = labels.detach()
    sums = lab.sum(1, dtype=torch.float32 if labels.device.type == "mps" else torch.float64)
    return bool((lab >= 0).all() & ((sums - 1).abs() <= tol).all())


def check_logits(outputs: Tensor, caller: str) -> Tensor:
    """``outputs`` as given, unless they are already class probabilities: ``[N, C]`` (``C >= 2``)
    with every row non-negative and summing to 1 (a model ending in ``nn.Softmax``). ``caller``
    applies a softmax to logits, and the softmax of probabilities flattens them (two classes: 0.2
    and 0.8 become 0.35 and 0.65), so its figures would be silently too small.

    Outputs of an evidential classifier, the concentrations ``alpha = evidence + 1`` of a Dirichlet, are warned
    of: their softmax is not the Dirichlet's expected probability ``alpha / alpha.sum()`` (``[10, 1, 1]``: 0.9998
    against 0.83), which ``output=lambda out: out.log()`` gives. They are told by their anchor at 1: every entry is
    at least 1, and the classes a sample does not support hold almost no evidence (the evidential loss's KL term
    drives it to 0), so half the rows or more hold an entry below 2 (less evidence than one observation); warned where both
    hold over at least 4 rows. Logits have no such anchor: the softmax is unchanged by a shift of a row, and the
    cross-entropy pulls no row up or down as a whole (its gradient sums to 0 over the classes), so the logits' level
    is about where the head's initialisation left it (about 0 for PyTorch's) while training spreads them apart;
    logits that are all at least 1 (a head whose bias is 5 or 20 above 0) have their rows' smallest entries anywhere above 1, not held
    below 2. Measured on digits MLPs, in batches of 16 and 64 rows: evidential heads (ReLU, softplus, exp evidence)
    warned of in every batch at initialisation and after 2, 5 and 20 epochs (after 1, the exp head's rows still held
    more evidence: in none); cross-entropy heads, also with those biases or ending in a softplus or a ReLU, in none
    after training, while an untrained head with every bias at 1.5 or 2 (logits of 1.1 to 2.9) was, before its
    first epoch. Logits that still are warned of are silenced by centring them
    (``output=lambda out: out - out.mean(1, keepdim=True)``: the same softmax). Warned once per
    :func:`~lightning_causal.causal.engine.batching.remembered_fit` block (an audit, an :func:`audit_mode`)
    and ``caller`` (:func:`~lightning_causal.causal.engine.batching.first_in_block`), not at each of its
    passes, whose statistics are not computed once it has warned
    (:func:`~lightning_causal.causal.engine.batching.said_in_block`); outside one, at every call.

    Raises:
        ValueError: naming ``output=`` and the exact fix, ``output=lambda out: out.log()``
            (log-probabilities are logits: their softmax gives the probabilities back).

    Examples:
        >>> check_logits(torch.tensor([[2.0, -1.0]]), "it").shape
        torch.Size([1, 2])
        >>> check_logits(torch.tensor([[0.2, 0.8], [0.5, 0.5]]), "FairnessAudit")
        Traceback (most recent call last):
        ...
        ValueError: Expected logits from the model, but every row of its output [2, 2] is non-negative and sums to 1: ...
    """
    if isinstance(outputs, Tensor) and outputs.dim() == 2 and outputs.shape[1] >= 2 and outputs.shape[0] > 0:
        with torch.no_grad():
            out = outputs.detach().float()
            is_prob = rows_sum_to_one(outputs)  # to the rounding of their dtype: a float16 softmax's rows too
        if is_prob and bool(((out == 0) | (out == 1)).all()):  # log() of a 0 is -inf: no fix for decisions
            raise ValueError(
                f"Expected logits from the model, but every row of its output {list(outputs.shape)} is one-hot (one 1, "
                "the rest 0): decisions, or prediction sets of one class each (an argmax or a thresholded output), no "
                f"scores, and a softmax is applied to its output by {caller}, which expects logits. Pass `output=` the "
                "scores the decisions are made from (a conformal or thresholding wrapper's classifier logits, "
                "`output=lambda out: ...` of a forward that returns them too); not `out.log()`, which makes -inf of the 0s")
        if is_prob:
            raise ValueError(
                f"Expected logits from the model, but every row of its output {list(outputs.shape)} is non-negative and "
                f"sums to 1: it returns probabilities already, and a softmax is applied to its output by {caller}, which "
                "expects logits (the softmax of probabilities flattens them). Pass `output=lambda out: out.log()`: log-probabilities are logits whose "
                "softmax gives the probabilities back; where `output=` picked them out of what the model returns, the log "
                "of that pick (`output=lambda out: out[0].probs.log()` for `out[0].probs`, `out` being the model's whole "
                "return value); a distribution's `.logits` are its log-probabilities already (`output='logits'` of a "
                "`Categorical`, `output=lambda out: out[0].logits` of one in a tuple)")
        # concentrations: at least 1 everywhere, half the rows or more with a class of less evidence than one observation;
        # the statistics only where the block has not warned of them yet (each of its passes calls this)
        key = f"evidential outputs read by {caller}"
        if outputs.shape[0] >= 4 and not said_in_block(key) and bool((out >= 1).all()) \
                and bool(out.amin(1).median() < 2) and first_in_block(key):
            warnings.warn(
                f"Every entry of the model's output [N, {outputs.shape[1]}] is at least 1 and half its rows or more hold one below "
                f"2, as the concentrations alpha (evidence + 1) of an evidential (Dirichlet) classifier do, and a softmax is applied to it by {caller}, "
                "which reads logits: the softmax of concentrations is not the expected probability alpha / alpha.sum() ([10, 1, 1]: "
                "0.9998 against 0.83). For concentrations pass `output=lambda out: out.log()` (its softmax is alpha / "
                "alpha.sum()); for evidence, `output=lambda out: (out + 1).log()`; logits that are all at least 1 "
                "keep their softmax centred, `output=lambda out: out - out.mean(1, keepdim=True)`, which silences this",
                UserWarning, stacklevel=outside_package())
    return outputs


#: autograd nodes an ``output=`` or a cast puts after the model's last operation, moving no value (walked through by
#: :func:`ends_in_sigmoid`)
_SHAPE_NODES = ("View", "UnsafeView", "Reshape", "ReshapeAlias", "Select", "Slice", "Squeeze", "Unsqueeze", "Index",
                "Clone", "ToCopy", "Expand", "Alias", "Permute", "Transpose", "T")


def ends_in_sigmoid(outputs: Tensor, model: nn.Module | None = None) -> bool:
    """Whether ``outputs`` come out of a sigmoid: their autograd graph's last operation (through reshapes, selections
    and casts) is one (``torch.sigmoid`` or ``nn.Sigmoid``, read where they were computed with gradients: a training
    step); else, inside :func:`~.layer_calls.layer_calls` (an audit's passes, without gradients), what the pass
    computed ``outputs`` with, by call order (:func:`_made_by_sigmoid`: the latest layer call whose output is
    ``outputs``, an ``nn.Sigmoid``, or whose ``torch.sigmoid`` gives them; a sigmoid registered before the head, a
    gate's registered after it, a gate or an auxiliary head called after the output, the logit ``output=`` took of a
    sigmoid, are told rightly); else the last layer ``model`` registers, losses and metrics aside, is an
    ``nn.Sigmoid`` (a compiled model's graph is one opaque node).

    Examples:
        >>> ends_in_sigmoid(torch.sigmoid(torch.zeros(2, requires_grad=True)).reshape(2, 1))
        True
        >>> ends_in_sigmoid(torch.zeros(2), nn.Sequential(nn.Linear(3, 1), nn.Sigmoid(), nn.BCELoss()))
        True
        >>> ends_in_sigmoid(torch.zeros(2), nn.Linear(3, 1))
        False
        >>> from lightning_causal.causal.engine.layer_calls import layer_calls
        >>> class Net(nn.Module):  # a gate registered last; an auxiliary head called after the output
        ...     def __init__(self, end):
        ...         super().__init__()
        ...         self.end, self.head, self.aux, self.gate = end, nn.Linear(3, 1), nn.Linear(3, 2), nn.Sigmoid()
        ...     def forward(self, x):
        ...         out = self.end(self.head(x))
        ...         return out, self.aux(x)
        >>> for end in (nn.Identity(), torch.sigmoid):
        ...     with layer_calls():
        ...         print(ends_in_sigmoid(Net(end)(torch.ones(2, 3))[0], Net(end)))
        False
        True
    """
    node = outputs.grad_fn
    while node is not None and type(node).__name__.rstrip("0123456789").removesuffix("Backward") in _SHAPE_NODES:
        node = next((f for f, _ in node.next_functions if f is not None), None)
    if node is not None and not type(node).__name__.startswith("CompiledFunction"):
        return type(node).__name__.startswith("SigmoidBackward")
    recorder = open_recorder()
    if recorder is not None and recorder.calls:  # what the pass computed the outputs with, by call order
        return _made_by_sigmoid(outputs, recorder)
    last = None
    for m in model.modules() if isinstance(model, nn.Module) else ():
        if not _loss_or_metric(m) and not any(True for _ in m.children()):
            last = m
    return isinstance(last, nn.Sigmoid)


def _loss_or_metric(m: nn.Module) -> bool:
    """Whether ``m`` is a loss or a metric, which a model holds beside its layers and calls outside its pass."""
    return isinstance(m, nn.modules.loss._Loss) or type(m).__name__.startswith(("Multiclass", "Multilabel", "Binary")) \
        or type(m).__module__.startswith("torchmetrics")


def _made_by_sigmoid(outputs: Tensor, recorder: LayerCalls) -> bool:
    """Whether the layer calls of ``recorder``'s last pass computed ``outputs`` with a sigmoid: the latest call, layers
    that move no value, losses and metrics aside, whose output of one value a row is ``outputs`` (to 1e-3: half precision
    rounds a sigmoid so) is an ``nn.Sigmoid``, or one whose output's ``torch.sigmoid`` is them (a sigmoid in ``forward``);
    a gate or an auxiliary head called after the output, and the logit ``output=`` took of a sigmoid, compute other
    values and are passed over. Where no call computed them, the last call an ``nn.Sigmoid`` of more than one value a
    row (``output=`` selecting one) says so."""
    calls = [c for c in recorder.calls if not isinstance(c.module, SHAPE_LAYERS) and not _loss_or_metric(c.module)]
    want = outputs.detach().float()

    def same(made: Tensor) -> bool:
        return made.is_floating_point() and made.numel() == want.numel() > 0 \
            and torch.allclose(made.float().reshape(want.shape), want, rtol=0, atol=1e-3)

    with torch.no_grad():
        for call in reversed(calls):
            if call.held is None:
                continue
            if same(call.held.detach()):
                return isinstance(call.module, nn.Sigmoid)
            if not isinstance(call.module, nn.Sigmoid) and call.held.is_floating_point() \
                    and same(torch.sigmoid(call.held.detach().float())):
                return True
    return bool(calls) and isinstance(calls[-1].module, nn.Sigmoid) and calls[-1].held is None


#: the fewest rows of one output on which :func:`check_one_logit` tells a probability from a logit
ONE_LOGIT_ROWS = 8


def check_one_logit(outputs: Tensor, caller: str, model: nn.Module | None = None) -> Tensor:
    """``outputs`` as given; one output ``[N]`` / ``[N, 1]`` that ``caller`` reads as a binary classifier's logit (its
    sigmoid the probability of class 1) is warned of where it looks like the probability already: a head ending in
    ``torch.sigmoid``, a Laplace last layer's probit-approximated predictive ``sigmoid(f / sqrt(1 + pi/8 var))``. The
    sigmoid of a probability lies in [0.5, 0.73], so every sample reads as decided positive (the fairness measures'
    positive rates 1.0, their flip rate 0, their gap squeezed about fourfold). Told where at least 8 rows (:data:`ONE_LOGIT_ROWS`) lie in [0, 1]
    on both sides of 0.5: read as probabilities both decisions occur, read as logits every sample is positive, none
    confidently (a classifier's logits spread over both signs from its initialisation on); where they all lie on one
    side (every probability above 0.5, or below: a classifier sure of one class on the probe, a rare-event one), where
    the outputs end in a sigmoid (:func:`ends_in_sigmoid`: the last operation of outputs computed with gradients, else
    ``model``'s last layer an ``nn.Sigmoid``): logits of one sign in (0, 1) are a model's own (a bias above 0), and
    are read as they are. ``output=lambda out:
    out.float().logit(eps=1e-6)`` gives the probability back exactly (``eps``: a saturated 0 or 1 is no infinite logit;
    ``float()``: in float16 or bfloat16 ``1 - eps`` rounds to 1, whose logit is ``inf``, and a half-precision sigmoid
    rounds every probability above 0.99976 (bfloat16: 0.998) to 1, where the repair term's ``sym_kl`` distance is NaN). Warned
    once per :func:`~lightning_causal.causal.engine.batching.remembered_fit` block and ``caller``, as
    :func:`check_logits` warns of concentrations; outside one, at every call.

    Args:
        outputs: the one output ``[N]`` or ``[N, 1]``.
        caller: who reads it as a logit, in the warning.
        model: the model that gave it, whose last layer is read where ``outputs`` carry no autograd graph.

    Examples:
        >>> check_one_logit(torch.tensor([-2.0, 0.3, 1.5]), "it").shape
        torch.Size([3])
    """
    if not isinstance(outputs, Tensor) or not outputs.is_floating_point() or outputs.dim() not in (1, 2) \
            or outputs.dim() == 2 and outputs.shape[1] != 1 or outputs.shape[0] < ONE_LOGIT_ROWS:
        return outputs
    key = f"probabilities read as one logit by {caller}"
    if said_in_block(key):
        return outputs
    with torch.no_grad():
        out = outputs.detach().float()
        unit = bool(((out >= 0) & (out <= 1)).all())
        below, above = unit and bool((out < 0.5).any()), unit and bool((out > 0.5).any())
    sigmoid = unit and not (below and above) and ends_in_sigmoid(outputs, model)  # one side: the model's last step says
    if (below and above or sigmoid) and first_in_block(key):
        where = ("on both sides of 0.5, as a binary classifier's probability does (a head ending in a sigmoid, a "
                 "Laplace or probit predictive)" if not sigmoid else
                 f"{'above' if above else 'below' if below else 'at'} 0.5, and the model's output comes out of a sigmoid (its last "
                 "operation, or its last layer an nn.Sigmoid): a binary classifier's probability")
        warnings.warn(
            f"Every entry of the model's one output {list(outputs.shape)} lies in [0, 1] {where}, and it is read as "
            f"a logit by {caller}, whose sigmoid is taken for the probability: the sigmoid of a probability lies in [0.5, "
            "0.73], every sample decided positive. For a probability pass `output=lambda out: out.float().logit(eps=1e-6)` (its "
            "sigmoid gives the probability back; eps: a saturated 0 or 1 is no infinite logit, in float32: float16's and "
            "bfloat16's 1 - eps is 1); logits that all lie there decide every "
            "sample positive, none with a probability above 0.73",
            UserWarning, stacklevel=outside_package())
    return outputs


def listed_target(target: Target) -> Target:
    """Captum's list of per-sample class indices (ints) as a tensor ``[N]``; any other ``target`` as it is (checked by
    :func:`resolve_target`), so that a caller who subsets the samples subsets a listed target with them.

    Examples:
        >>> listed_target([2, 0, 1]), listed_target(1)
        (tensor([2, 0, 1]), 1)
    """
    if isinstance(target, list) and target and all(isinstance(t, int) and not isinstance(t, bool) for t in target):
        return torch.tensor(target)
    return target


def level_target(target: Any, name: str = "target") -> str:
    """``""``, or where ``target`` is a fraction in (0, 1), a quantile level (0.5 for the median) rather than the
    column index that ``target=`` takes, the words that say so, appended to a refusal of it (:func:`resolve_target`,
    the audits' ``check_target``).

    Examples:
        >>> level_target(0.5)[:52]
        '; `target` is an output column, not a quantile level'
        >>> level_target(2), level_target(1.0)
        ('', '')
    """
    if not isinstance(target, float) or not 0 < target < 1:
        return ""
    return (f"; `{name}` is an output column, not a quantile level: a quantile regressor's outputs [N, Q] at the levels "
            f"(0.1, 0.5, 0.9) give the median as `{name}=1`, the column that holds it")


def resolve_target(outputs: Tensor, target: Target, *, classes: str | None = None, name: str = "target") -> Tensor:
    """Per-sample class indices ``[N]``: ``None`` means the predicted class of ``outputs``.
    ``classes`` says what the columns of ``outputs`` are in an out-of-range message (default: the
    model's outputs); ``name`` is the caller's parameter the messages name (default ``target``).

    Args:
        outputs: the model's output ``[N, C]`` (or ``[N]``).
        target: ``None``, a class index for every sample, or per-sample indices ``[N]`` (a tensor, or a
            list of ints as Captum takes them).
        classes: as above.
        name: as above.

    Examples:
        >>> resolve_target(torch.tensor([[0.1, 0.9], [2.0, 1.0]]), None)
        tensor([1, 0])
    """
    logits = _as_logits(outputs)
    n, c = logits.shape
    if target is None:
        return logits.argmax(dim=1) if c > 1 else torch.zeros(n, dtype=torch.long, device=logits.device)
    target = listed_target(target)  # Captum's list of per-sample class indices
    if isinstance(target, bool) or not isinstance(target, (int, Tensor)):
        dense = ("; a tuple such as Captum's `(class, i, j)` for a position of a dense output is said with `output=` "
                 "choosing the position and the class as the target: `output=lambda out: out[:, :, i, j]`, "
                 f"`{name}=class`") if isinstance(target, (tuple, list)) else ""
        raise TypeError(f"Expected argument `{name}` to be None, an int, a list of ints or a tensor of class indices but got "
                        f"{type(target)}{dense}{level_target(target, name)}")
    idx = torch.as_tensor(target, device=logits.device)
    if idx.is_floating_point():
        raise TypeError(f"Expected argument `{name}` to hold integer class indices but got dtype {idx.dtype}")
    shape = list(idx.shape)
    idx = idx.long().reshape(-1)
    if idx.numel() == 1:
        idx = idx.expand(n)
    if idx.numel() != n:
        dense = ""
        if len(shape) == 2 and shape[0] == n:  # [N, C]: one-hot or multi-hot rows, or a class per step of a sequence
            dense = (f" (shape {shape}: rows of {shape[1]} entries are not one class per sample; one-hot rows give their "
                     f"class with `{name}=y.argmax(1)`, a class per step of a sequence is chosen with `output=` reducing "
                     f"the steps, e.g. `output=lambda out: out[:, t]` and `{name}=y[:, t]`)")
        elif len(shape) >= 3 and shape[0] == n:  # a class per position (a segmentation mask [N, H, W]) is no class per sample
            dense = (f" (shape {shape}: a class per position, e.g. a segmentation mask, is not one class per sample; choose "
                     "what is explained with `output=` reducing the dense output to [N, classes], e.g. a region's mean "
                     f"`output=lambda out: out[:, :, 8:16, 8:16].mean((2, 3))`, and pass `{name}=` one class per sample, "
                     "e.g. the region's most frequent class `mask[:, 8:16, 8:16].flatten(1).mode(1).values`)")
        raise ValueError(f"Expected argument `{name}` to have 1 or {n} entries but got {idx.numel()}{dense}")
    if (idx < 0).any() or (idx >= c).any():
        bad = sorted(set(idx[(idx < 0) | (idx >= c)].tolist()))
        # rank c of c cumulative logits? Not of class probabilities or log-probabilities (a Softmax/LogSoftmax at the
        # end: one decision's classes, whose index c is a class numbered from 1)
        ordinal = ranks_hint(c, logits) if bad == [c] and c >= 2 and not classes else ""
        numbered = "; e.g. a class numbered from 1" if ordinal else ""  # the likelier reading of a plain classifier's
        raise ValueError(f"Expected argument `{name}` to be in [0, {c - 1}] but got {bad[:8]} ({classes or f'the model returns {c} outputs'}{numbered}{ordinal})")
    return idx.clone()


def gather_target(outputs: Tensor, target_idx: Tensor) -> Tensor:
    """``outputs[i, target_idx[i]]`` for every row ``i``.

    Args:
        outputs: the model's output ``[N, C]`` (or ``[N]``).
        target_idx: ``[N]`` class indices (:func:`resolve_target`).

    Examples:
        >>> import torch
        >>> gather_target(torch.tensor([[0.1, 0.9], [0.7, 0.3]]), torch.tensor([1, 0]))
        tensor([0.9000, 0.7000])
    """
    if target_idx.numel() != outputs.shape[0]:  # gather would read the first rows only
        raise ValueError(f"Expected argument `target_idx` to hold one class index per row of `outputs` ({outputs.shape[0]}) but got "
                         f"{list(target_idx.shape)}")
    return _as_logits(outputs).gather(1, target_idx.view(-1, 1)).squeeze(1)


@contextlib.contextmanager
def frozen_params(model: nn.Module) -> Iterator[None]:
    """Parameters stop requiring grad (so optimising inputs writes no ``.grad``); flags restored on exit.

    Args:
        model: the model whose parameters are frozen.

    Examples:
        >>> from torch import nn
        >>> model = nn.Linear(3, 2)
        >>> with frozen_params(model):
        ...     print(model.weight.requires_grad)
        False
        >>> model.weight.requires_grad
        True
    """
    check_built(model)
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
