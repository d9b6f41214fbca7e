"""Where ``num_heads`` slices are heads, and where they are not.

``num_heads=H`` cuts a site's unit dimension into ``H`` contiguous slices. They are attention heads
only where the site holds the heads side by side: the output of a module that returns them before
the output projection (Hugging Face BERT's ``attention.self``), or the input of the projection
(``"...o_proj:input"``, ``"...out_proj:input"`` of ``nn.MultiheadAttention``). :func:`check_heads`
runs every refusal and warning in one call: an output already projected or a whole layer
(:func:`check_head_site`), a fused query/key/value projection (:func:`check_fused_projection`), a
channels-first output without ``unit_dim`` (:func:`check_head_dimension`,
:func:`check_head_module`), slices that are parts of heads (:func:`check_head_width`).

Examples:
    >>> check_heads(nn.Sequential(nn.Linear(4, 8)), "0", nn.Linear(4, 8), unit_dim=None, num_heads=2)
"""

from __future__ import annotations

import re

import torch
from torch import nn

from lightning_causal.causal.engine.unit_sites import (
    _CHANNELS_FIRST,
    SiteFacts,
    _consumer,
    channel_count,
)
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["HEAD_COUNT_ATTRIBUTES", "HEAD_WIDTH_ATTRIBUTES", "OUTPUT_PROJECTIONS", "OUTPUT_PROJECTION_PATHS", "check_fused_projection",
           "check_head_dimension", "check_head_module", "check_head_site", "check_head_width", "check_heads"]

#: Names of the linear layers that project an attention's concatenated heads (Llama/ViT ``o_proj``,
#: PyTorch/CLIP ``out_proj``, DistilBERT ``out_lin``; GPT-2's ``c_proj`` also ends its MLP, whose
#: output has no heads either): their output is never the heads side by side, their input is.
OUTPUT_PROJECTIONS = frozenset({"o_proj", "out_proj", "out_lin", "c_proj"})

#: Name endings of attention output projections with a bare name (``dense`` also names MLP layers):
#: BERT-family attention (BERT, RoBERTa, ELECTRA, DeBERTa: ``attention.output.dense``, after
#: ``attention.self``), ALBERT's ``attention.dense``, Phi's ``self_attn.dense``, T5's ``SelfAttention.o``
#: and ``EncDecAttention.o``; ``attn.proj`` (``proj`` also names patch embeddings) of timm-style vision
#: transformers (ViT, DeiT, DINOv2, Swin, BEiT: ``blocks.<i>.attn.qkv`` then ``blocks.<i>.attn.proj``);
#: ``to_out.0``, the linear layer of ``to_out = Sequential(Linear, Dropout)`` after ``to_qkv`` (vit-pytorch's
#: ``Attention``, diffusers' ``to_out[0]``).
#: Matched as whole dotted components of the name (``blocks.0.attn.proj``, not ``blocks.0.myattn.proj``);
#: BERT's decoder cross-attention ``crossattention.output.dense`` is listed for that reason.
OUTPUT_PROJECTION_PATHS = ("attention.output.dense", "crossattention.output.dense", "attention.dense", "self_attn.dense",
                           "SelfAttention.o", "EncDecAttention.o", "attn.proj", "to_out.0")


def _ends_with_path(name: str, paths: tuple[str, ...] = OUTPUT_PROJECTION_PATHS) -> bool:
    """Whether the module name ``name`` ends with one of ``paths`` as whole dotted components.

    Examples:
        >>> _ends_with_path("blocks.0.attn.proj"), _ends_with_path("blocks.0.myattn.proj"), _ends_with_path("proto_out.0")
        (True, False, False)
    """
    parts = name.split(".")
    return any(parts[-len(path):] == path for path in (p.split(".") for p in paths) if len(parts) >= len(path))


def _attention_part(part: str) -> bool:
    """Whether a component of a module name names an attention (``attn``, ``self_attn``, ``attention``,
    ``SelfAttention``, ``att``, ``att_block``), not a word that holds the letters ``att`` (``scatter``,
    ``pattern``, ``attribute_head``)."""
    return re.search(r"attn|attention|(^|_)att(_|$)", part.lower()) is not None


def check_head_site(module: nn.Module, name: str, num_heads: int | None, facts: SiteFacts | None = None) -> None:
    """Refuse ``num_heads`` where the module's output is already projected, so that its contiguous
    slices are not heads: a ``torch.nn.MultiheadAttention`` (it applies ``out_proj`` inside its
    forward), and, given ``facts`` from :func:`inspect_site`, any module whose output comes from a
    layer inside it that mixes features (DistilBERT's ``out_lin``, GPT-2's ``c_proj``, Llama's
    ``o_proj``; BERT's ``attention``: projection, residual, LayerNorm) or that holds an attention output
    projection (a Llama decoder layer, T5's ``layer.0``: the residual stream), and an output projection
    itself, a linear layer named as in :data:`OUTPUT_PROJECTIONS` or ending as in
    :data:`OUTPUT_PROJECTION_PATHS` (its input ``"<name>:input"`` holds the heads). Hugging Face BERT's ``attention.self`` returns the heads before the
    projection and passes.

    Examples:
        >>> check_head_site(nn.MultiheadAttention(4, 2), "attn", None)  # whole-output units: fine
    """
    if num_heads is None:
        return
    if _is_output_projection(module, name):
        raise ValueError(
            f"Expected `num_heads` on a module whose output is the heads side by side, but {name!r} is an attention "
            "output projection: its output mixes the heads, so slices of it are not heads. The heads are its input: "
            f"name the site {name + ':input'!r}")
    if isinstance(module, nn.MultiheadAttention):
        why = "a torch.nn.MultiheadAttention, whose output is already projected by `out_proj`"
    elif facts is not None and facts.projected:
        why = "its output comes from a layer inside it that mixes features (an output projection or a normalisation)"
    elif _head_input_sites(module, name):
        why = ("it holds an attention output projection, so its output comes after the heads are mixed (a transformer "
               "layer's residual stream)")
    else:
        return
    sites = _head_input_sites(module, name)
    where = (f"The heads are the input of its attention output projection: name the site {sites[0]!r}" if len(sites) == 1 else
             f"The heads are the inputs of its attention output projections: name one of the sites {sites}" if sites else
             "Name the module that returns the concatenated heads before the output projection (Hugging Face BERT's "
             "`attention.self`)")
    raise ValueError(
        f"Expected `num_heads` on a module whose output is the heads side by side, but {name!r} is not: {why}, so "
        f"slices of it are not heads. {where}, or give the layer without `num_heads` to intervene on output features")


#: Attribute names under which attention modules keep their head count (GPT-2, Falcon, Bloom, ...;
#: vit-pytorch's ``heads``).
HEAD_COUNT_ATTRIBUTES = ("num_heads", "n_head", "num_attention_heads", "n_heads", "heads")


def _linear_widths(module: nn.Module) -> tuple[int, int] | None:
    """``(in, out)`` of an ``nn.Linear`` or a Hugging Face ``Conv1D`` (weight ``[in, out]``), else None."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    weight = getattr(module, "weight", None)
    if type(module).__name__ == "Conv1D" and isinstance(weight, torch.Tensor) and weight.dim() == 2:
        return int(weight.shape[0]), int(weight.shape[1])
    return None


def check_fused_projection(model: nn.Module, name: str, num_heads: int | None) -> None:
    """Refuse (or, without a known head count, warn about) ``num_heads`` on the output of a fused
    query/key/value projection: a linear layer three times as wide as its input (GPT-2's ``c_attn``)
    returns ``[q | k | v]``, which ``num_heads=H`` cuts into slices of ``3D/H`` that are not heads
    (each spans parts of two heads, or of q and k). Its heads are ``num_heads=3H`` (units ``0..H-1``
    queries, ``H..2H-1`` keys, ``2H..3H-1`` values), which passes; the heads' outputs are the input
    of the attention output projection.

    Examples:
        >>> attn = nn.Module()
        >>> attn.c_attn, attn.num_heads = nn.Linear(8, 24), 2
        >>> check_fused_projection(nn.ModuleDict({"attn": attn}), "attn.c_attn", 6)  # q, k and v heads: fine
        >>> check_fused_projection(nn.ModuleDict({"attn": attn}), "attn.c_attn", 2)
        Traceback (most recent call last):
        ...
        ValueError: Expected `num_heads` on a module whose output is the heads side by side, but 'attn.c_attn' is a fused ...
    """
    if num_heads is None or name.endswith(":input"):
        return
    from lightning_causal.causal.engine.interventions import resolve_module

    widths = _linear_widths(resolve_module(model, name))
    if widths is None or widths[1] != 3 * widths[0]:
        return
    parent_name = name.rsplit(".", 1)[0] if "." in name else ""
    parent = model.get_submodule(parent_name) if parent_name else model
    heads = next((int(v) for a in HEAD_COUNT_ATTRIBUTES if isinstance(v := getattr(parent, a, None), int) and v > 0), None)
    if heads is not None and num_heads == 3 * heads:
        return
    sites = _head_input_sites(parent, parent_name) if parent_name else []
    count = f"num_heads={3 * heads}" if heads is not None else "num_heads = 3 x the model's heads"
    message = (
        f"'{name}' is a fused query/key/value projection (its output, {widths[1]} = 3 x {widths[0]} wide, is [q | k | v] "
        f"side by side), so num_heads={num_heads} cuts it into slices of {widths[1] // num_heads if widths[1] % num_heads == 0 else widths[1] / num_heads} "
        f"that are not heads. Its query, key and value heads are {count} (the first third of the units the queries, "
        "then the keys, then the values)"
        + (f"; the heads' outputs are the input of the attention output projection: name {sites[0]!r}" if len(sites) == 1 else ""))
    if heads is not None:
        raise ValueError(f"Expected `num_heads` on a module whose output is the heads side by side, but {message}")
    import warnings

    warnings.warn(message, UserWarning, stacklevel=outside_package())


def _is_output_projection(module: nn.Module, name: str) -> bool:
    """A linear layer (or GPT-2's ``Conv1D``) named as an attention output projection."""
    named = name.rsplit(".", 1)[-1] in OUTPUT_PROJECTIONS or _ends_with_path(name)
    return named and (isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D")


def _head_input_sites(module: nn.Module, name: str) -> list[str]:
    """``"<projection>:input"`` for the attention output projections inside ``module`` (GPT-2's
    ``attn.c_proj``, DistilBERT's ``attention.out_lin``, Llama's ``self_attn.o_proj``, the ``out_proj`` of
    an ``nn.MultiheadAttention``, ``module`` itself included), leaving out those of an MLP (GPT-2's
    ``mlp.c_proj``): the sites whose input holds the heads side by side."""
    def parent(sub: str) -> nn.Module:
        return module.get_submodule(sub.rsplit(".", 1)[0]) if "." in sub else module

    prefix = f"{name}." if name else ""
    torch_mha = [f"{prefix}{sub}" for sub, child in module.named_modules()
                 if sub.rsplit(".", 1)[-1] == "out_proj" and isinstance(parent(sub), nn.MultiheadAttention)]
    found = [f"{prefix}{sub}" for sub, child in module.named_modules() if sub and _is_output_projection(child, f"{prefix}{sub}")]
    attention = [site for site in found if site in torch_mha or _ends_with_path(site)
                 or any(_attention_part(part) for part in site.split(".")[:-1])]
    return [f"{site}:input" for site in attention]


def check_heads(model: nn.Module, name: str, module: nn.Module, unit_dim: int | None, num_heads: int | None,
                facts: SiteFacts | None = None) -> None:
    """Every refusal of ``num_heads`` where contiguous slices are not heads, in one call (estimators
    with the ``facts`` of a forward pass, :func:`~lightning_causal.causal.engine.interventions.intervene`
    without): an output already projected (:func:`check_head_site`), a fused query/key/value
    projection (:func:`check_fused_projection`), a channels-first output without ``unit_dim``
    (:func:`check_head_dimension`, or :func:`check_head_module` from the module alone).

    Examples:
        >>> model = nn.Sequential(nn.Conv2d(3, 8, 3))
        >>> check_heads(model, "0", model[0], unit_dim=1, num_heads=4)  # groups of 2 channels: fine
    """
    if num_heads is None:
        return
    check_head_site(module, name, num_heads, facts)
    check_fused_projection(model, name, num_heads)
    if facts is None:
        check_head_module(module, name, unit_dim, num_heads)
    else:
        check_head_dimension(name, facts, unit_dim, num_heads)
        dim = -1 if unit_dim is None else unit_dim
        if -len(facts.shape) <= dim < len(facts.shape):
            check_head_width(model, name, num_heads, facts.shape[dim])


#: Attribute names under which attention modules keep the width of one head (Llama, Mistral, Qwen2,
#: ViT, BART, GPT-2, ``nn.MultiheadAttention``: ``head_dim``; BERT, DeBERTa: ``attention_head_size``;
#: T5: ``key_value_proj_dim``).
HEAD_WIDTH_ATTRIBUTES = ("head_dim", "attention_head_size", "key_value_proj_dim")


def check_head_width(model: nn.Module, name: str, num_heads: int | None, width: int) -> None:
    """Warn where the slices ``num_heads`` cuts the ``width`` features into are parts of heads: where
    the site or the module holding it (the attention of ``o_proj:input``, ``v_proj``) keeps its head
    width (:data:`HEAD_WIDTH_ATTRIBUTES`), a slice of a whole number of heads is a head or a group of
    heads; a smaller one is not (still computed: ``num_heads`` cuts contiguous slices of any site).
    Under grouped-query attention ``v_proj`` holds the key/value heads only, so the query-head count
    cuts each in parts.

    Examples:
        >>> attn = nn.Module()
        >>> attn.v_proj, attn.head_dim = nn.Linear(32, 16), 8
        >>> check_head_width(nn.ModuleDict({"attn": attn}), "attn.v_proj", 2, 16)  # 2 heads of 8: fine
    """
    if num_heads is None or width <= 0 or width % num_heads:
        return
    from lightning_causal.causal.engine.interventions import resolve_module

    base = name.removesuffix(":input")
    owners = [base] + ([base.rsplit(".", 1)[0]] if "." in base else [])
    for owner in owners:
        module = resolve_module(model, owner)
        head = next(((a, v) for a in HEAD_WIDTH_ATTRIBUTES if isinstance(v := getattr(module, a, None), int)
                     and not isinstance(v, bool) and v > 0), None)
        if head is None:
            continue
        attribute, size = head
        if width % size or (width // num_heads) % size == 0:
            return
        import warnings

        warnings.warn(
            f"The {width} features of {name!r} are {width // size} heads of {size} (`{attribute}` of {owner!r}), so "
            f"num_heads={num_heads} cuts them into slices of {width // num_heads}, parts of heads, which are its units. "
            f"Pass num_heads={width // size} for one unit per head (or a divisor of it for groups of heads)",
            UserWarning, stacklevel=outside_package())
        return


def check_head_module(module: nn.Module, name: str, unit_dim: int | None, num_heads: int | None) -> None:
    """:func:`check_head_dimension` without a forward pass (:func:`~lightning_causal.causal.engine.interventions.intervene`):
    ``num_heads`` without ``unit_dim`` refused on a convolution or channel normalisation, or on its input.

    Examples:
        >>> check_head_module(nn.Conv2d(3, 8, 3), "conv", unit_dim=1, num_heads=4)
    """
    layer = _consumer(module)
    if num_heads is not None and unit_dim is None and isinstance(layer, _CHANNELS_FIRST):
        channels = channel_count(layer, "in_channels" if layer is not module else "out_channels") or 0
        check_head_dimension(name, SiteFacts(False, False, (1, channels, 0), True), unit_dim, num_heads)


def check_head_dimension(name: str, facts: SiteFacts, unit_dim: int | None, num_heads: int | None) -> None:
    """Refuse ``num_heads`` without ``unit_dim`` on a channels-first output (:attr:`SiteFacts.channels_first`,
    a convolution's ``[N, C, H, W]``): there ``num_heads`` alone splits the last dimension, the
    width, into slices of columns, where groups of channels were meant.

    Examples:
        >>> check_head_dimension("conv", SiteFacts(False, False, (1, 16, 8, 8), True), unit_dim=1, num_heads=4)
    """
    if num_heads is None or unit_dim is not None or len(facts.shape) < 3 or not facts.channels_first:
        return
    channels = facts.shape[1]
    groups = (f"groups of {channels // num_heads} channels" if channels and channels % num_heads == 0 else
              f"groups of its {channels} channels" if channels else "groups of channels")
    returns = f"returns {list(facts.shape)}" if all(facts.shape) else "returns its output"
    raise ValueError(
        f"Expected `num_heads` without `unit_dim` on an output whose features are last ([N, T, D]: it splits the last "
        f"dimension), but {name!r} {returns} with its channels on dimension 1 (a convolution, a "
        f"channel normalisation or a pool), so num_heads={num_heads} would cut the width into slices of columns. Pass "
        f"`unit_dim=1` for {groups} as units (e.g. the groups of a grouped convolution), or `unit_dim=-1` to split "
        "the last dimension")
