"""Input effects measured at a layer: interventions on the output of an input layer (the word
embeddings of a transformer) instead of on the inputs themselves, as Captum's layer methods do.

Row ``r = (group g, sample s)`` runs the model on the unchanged input ``x_s`` with a forward hook
that replaces the layer's output at the elements of group ``g`` by the reference ``e``:

.. math:: \\delta_g(x) = f_t(x) - f_t\\big(x \\mid do(h_g := e_g)\\big), \\qquad h = \\text{layer}(x)

The layer's output must start with the input's shape (``[N, T, D]`` for token ids ``[N, T]``):
each element belongs to the group of its input position. The reference ``e`` is a constant (a
zero vector by default) or, for token inputs and an integer baseline ``b``, the layer's output on
the input with every token set to ``b`` (the embedding of ``[MASK]`` or pad at each position; that
pass stops at the layer, so a model that would refuse such ids, as BART and T5 refuse ids without an
end-of-sequence token, is not run on them).
All rows run batched through the row engine; rows whose group already equals the reference, or
lies in padding (a keyword forward argument ``attention_mask`` is 0 there), are not run (effect
exactly 0).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.ablation import (
    changed_groups,
    check_baselines,
    padding_positions,
    sample_rows,
)
from lightning_causal.causal.engine.batching import map_rows, rows_per_pass
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.interventions import (
    capture,
    module_output,
    replace_output,
    resolve_module,
)
from lightning_causal.causal.engine.linked_samples import check_rows_independent
from lightning_causal.causal.engine.noise import GeneratorWatch, common_noise
from lightning_causal.causal.engine.padded_reads import explained_target
from lightning_causal.causal.engine.state import audit_mode, gather_target, resolve_target
from lightning_causal.causal.engine.token_ids import (
    check_token_baselines,
    embedding_readers,
    token_errors_named,
)

__all__ = ["input_layer_effects", "layer_reference"]


def _is_token_id(x: Tensor, baseline: Any) -> bool:
    """An integer baseline for integer inputs names a token (its layer output is the reference)."""
    if x.is_floating_point() or x.is_complex():
        return False
    if isinstance(baseline, Tensor):
        return not baseline.is_floating_point() and baseline.dtype != torch.bool
    return isinstance(baseline, int) and not isinstance(baseline, bool)


def layer_reference(
    forward: Forward, x: Tensor, h: Tensor, layer: str, *, baseline: Any, readers: list | None = None
) -> Tensor:
    """The reference value ``e`` of the layer's output, ``[1 or N, *h.shape[1:]]``.

    An integer baseline for integer inputs is a token id: ``e`` is the layer's output on the input
    filled with it (per sample: forward arguments such as token types follow their samples).
    Otherwise ``baseline`` is a value of the layer's output: a number, a vector ``[D]`` over the
    last dimension, or a tensor broadcastable to ``h``. ``readers``: the embeddings that read ``x``
    in its clean pass (:func:`~lightning_causal.causal.engine.token_ids.embedding_readers`); a token
    id outside their vocabulary is refused before the pass.

    Args:
        forward: the model's prepared :class:`~lightning_causal.causal.engine.forward.Forward`.
        x: the input ``[N, ...]`` (token ids or values).
        h: the layer's output on ``x`` ``[N, ...]``.
        layer: the layer's module name.
        baseline: the reference, as above.
        readers: as above; ``None``: no vocabulary check.
    """
    if _is_token_id(x, baseline):
        b = check_baselines((x,), baseline)[0]
        check_token_baselines((x,), (b,), readers or [])
        with token_errors_named((b,)):  # an embedding's failed lookup of indices computed from the ids, named
            return _layer_output(forward, layer, torch.broadcast_to(b, x.shape).contiguous())
    if isinstance(baseline, Tensor) and baseline.dim() == 1 and h.dim() > 2 and baseline.shape[0] == h.shape[-1]:
        baseline = baseline.view([1] * (h.dim() - 1) + [-1])
    if isinstance(baseline, int) and not isinstance(baseline, bool):
        baseline = float(baseline)
    return check_baselines((h,), baseline)[0]


class _Reached(BaseException):
    """Ends the reference pass once the layer has returned (a ``BaseException``, so that a model's own
    ``except Exception`` cannot swallow it)."""


def _layer_output(forward: Forward, layer: str, x: Tensor) -> Tensor:
    """The output of ``layer``'s first call on input ``x``; the pass stops there. The rest of the model
    need not run, and may refuse ``x``: an encoder-decoder classifier (BART, T5) reads the end-of-sequence
    token of its ids, which ids filled with the baseline token lack."""
    def stop(_m: nn.Module, _i: object, _o: object) -> None:
        raise _Reached

    with capture(forward.model, [layer]) as acts:
        handle = resolve_module(forward.model, layer).register_forward_hook(stop)  # after capture's hook
        try:
            forward(x)
        except _Reached:
            pass
        finally:
            handle.remove()
    return acts[layer]


def _first_tensor(args: tuple, kwargs: dict) -> Tensor | None:
    """The first tensor a module is called with (positional first, then keywords)."""
    return next((a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)), None)


def _check_layer_output(h: Tensor | None, x: Tensor, layer: str, read: Tensor | None = None) -> Tensor:
    if h is None:
        raise ValueError(f"Expected module {layer!r} (`input_layer`) to run in the forward pass but it did not")
    if h.dim() < x.dim() or h.shape[: x.dim()] != x.shape or not h.is_floating_point():
        shape = list(h.shape)
        tokens = ("; its output is a sequence of tokens made from the input (a vision transformer's patch "
                  f"embeddings): unit_effects(model, x, {layer!r}, unit_dim=1) intervenes on each of its {shape[1]} "
                  "tokens, and input_effects with feature_mask=patch_mask(...) on the pixels of each patch"
                  if h.is_floating_point() and h.dim() == 3 and x.dim() >= 3 and h.shape[0] == x.shape[0] else "")
        if not tokens and h.dim() == 2 and x.dim() == 2 and h.shape[0] == x.shape[0] and read is not None and read.shape == x.shape:
            tokens = ("; it maps the whole input to other features (a linear layer of a tabular model?), of which no input "
                      "column owns one: intervene on the input itself (`input_layer=None`), or on the layer's features "
                      f"with unit_effects(model, x, {layer!r})")
        elif not tokens and h.dim() == 2 and x.dim() == 2 and h.shape[0] == x.shape[0]:  # emb_j(x[:, j].long()) of tabular codes
            tokens = ("; it embeds a part of the input (one category-code column of several, each with its own "
                      "embedding?): intervene on the input itself (`input_layer=None`, the reference code of each column "
                      "as `baseline`; in CaptumBaseline, FeatureAblation beside the causal effects)")
        raise ValueError(
            f"Expected module {layer!r} (`input_layer`) to output a floating point tensor that starts with the "
            f"input's shape {list(x.shape)} (e.g. embeddings [N, T, D] of token ids [N, T]) but got {shape} of {h.dtype}"
            + tokens
        )
    if read is not None and read.shape[: x.dim()] != x.shape:  # e.g. one embedding per categorical column: emb_0(x[:, 0])
        raise ValueError(
            f"Expected module {layer!r} (`input_layer`) to read the whole input {list(x.shape)} (its output is grouped "
            f"by the input's positions) but it reads a tensor of shape {list(read.shape)}, a part of the input (one "
            "column of several, each with its own embedding?); intervene on the input itself (`input_layer=None`, "
            "an integer baseline: a category code per column) or name one layer that embeds every column"
        )
    return h


def input_layer_effects(
    model: nn.Module,
    x: Tensor,
    mask: Tensor,
    baseline: Any,
    *,
    layer: str,
    target: int | Tensor | None,
    max_batch_size: int | None,
    forward: Forward,
    num_groups: int,
    forward_args: Any = None,
) -> Tensor:
    """``[N, G]`` effects of replacing each group of ``layer``'s output by the reference (see the
    module docstring); ``mask`` ``[1 or N, *x.shape[1:]]`` holds the groups of the input positions.
    Called by :func:`~lightning_causal.causal.effects.input_effects.input_effects` with ``input_layer=``.

    Args:
        model: the model (the estimator's ``model``).
        x: the one input ``[N, ...]``.
        mask: its groups, as above.
        baseline: the reference, as in :func:`layer_reference`.
        layer: the module whose output is intervened on (``input_layer=``).
        target: class index, per-sample indices ``[N]``, or ``None`` (the predicted class).
        max_batch_size: rows per forward pass (``None``: from the memory budget).
        forward: the model's prepared :class:`~lightning_causal.causal.engine.forward.Forward`.
        num_groups: ``G``, the number of groups.
        forward_args: the caller's ``additional_forward_args`` (padding masks are read from them);
            ``None``: none.
    """
    from lightning_causal.causal.effects.input_effects import active_rows

    module = resolve_module(forward.model, layer)
    n = x.shape[0]
    with audit_mode(forward.model):
        seen: list[Tensor | None] = []
        pre = module.register_forward_pre_hook(lambda _m, a, kw: seen.append(_first_tensor(a, kw)), with_kwargs=True)
        try:
            with capture(forward.model, [layer]) as acts, embedding_readers(forward.model, (x,)) as readers, \
                    GeneratorWatch() as clean_pass:  # whether the model draws from a global generator: no pass of its own
                out = forward(x)
        finally:
            pre.remove()
        h = _check_layer_output(acts.get(layer), x, layer, seen[0] if seen else None)
        tidx, f0 = explained_target(forward, (x,), out, target, "Intervening on the inputs")  # item ids [N, L] -> [N, L]
        ref = layer_reference(forward, x, h, layer, baseline=baseline, readers=readers).to(h.dtype)
        m = mask.view(*mask.shape, *[1] * (h.dim() - x.dim()))
        pad = padding_positions(x, forward_args, model=forward.model)  # broadcastable to x: over the layer's trailing dimensions too
        pad = None if pad is None else pad.view(*pad.shape, *[1] * (h.dim() - x.dim()))  # as the mask: [N, T, 1] or [N, 1, T]
        changed = changed_groups((h,), (m,), (ref,), num_groups, (pad,)).T  # [G, N]
        rows = max(1, rows_per_pass(forward.model, (x,), max_batch_size, forward=forward))
        noise = common_noise(forward, forward.model, (x,), rows, drew=clean_pass.moved)  # None unless the model draws noise
        if noise is None:  # two samples alone give their outputs in the batch (input_effects' clean_target)
            check_rows_independent(forward, (x,), out, "Intervening on the inputs", one_row=max_batch_size == 1 and n > 1)
        if noise is not None or (max_batch_size == 1 and n > 1):  # the clean outputs of the blocks' seeds, or of each
            # sample alone where its intervened rows run alone (the patch hook is not on yet)
            out = noise.clean(lambda s: forward(x[s], rows=s), x.device) if noise is not None else \
                map_rows(n, 1, lambda s: forward(x[s], rows=s), x.device)
            tidx = resolve_target(out, target)
            f0 = gather_target(out, tidx)
        chunk: dict[str, Tensor] = {}

        def patch(_m: nn.Module, _i: object, o: object) -> object:
            s, grp = chunk["s"], chunk["g"]
            value = module_output(o, layer)
            selected = sample_rows(m, s) == grp.view([-1] + [1] * (value.dim() - 1))
            return replace_output(o, torch.where(selected, sample_rows(ref, s), value))

        def evaluate(idx: Tensor) -> Tensor:
            chunk["g"], chunk["s"] = idx // n, idx % n
            return gather_target(forward(x[chunk["s"]], rows=chunk["s"]), tidx[chunk["s"]])

        handle = module.register_forward_hook(patch)
        try:
            ablated = active_rows(changed, f0, rows, evaluate) if noise is None else noise.active(changed, f0, evaluate)
        finally:
            handle.remove()
    return (f0.unsqueeze(0) - ablated).T.contiguous()
