"""The layer causal map (TRACER): how input interventions propagate through the layers, with
layers that respond alike merged into one causal node.

Every input group ``g`` of every sample ``x`` is set to the baseline (``do(x_g := b)``, all
``G * N`` interventions batched), and the change of each layer's activation is recorded:
``Δ_L(g, x) = h_L(x) - h_L(x | do(x_g := b))``. The rows ``(g, x)`` of ``Δ_L`` are the layer's
*response profile*; two layers are compared by the linear CKA of their profiles (Kornblith et al.
2019), and contiguous layers whose CKA is at least ``threshold`` merge into one node.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.ablation import (
    ablate_groups,
    check_baselines,
    padding_positions,
    sample_rows,
)
from lightning_causal.causal.engine.batching import rows_per_pass
from lightning_causal.causal.engine.checks import check_float, check_int
from lightning_causal.causal.engine.finite import check_finite_samples
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.groups import check_feature_mask, group_counts, num_groups
from lightning_causal.causal.engine.interventions import capture, resolve_module
from lightning_causal.causal.engine.noise import CommonNoise, GeneratorWatch, common_noise
from lightning_causal.causal.engine.prefix_cache import check_samples_independent
from lightning_causal.causal.engine.state import (
    as_tuple,
    audit_mode,
    gather_target,
    output_fix,
    resolve_target,
)
from lightning_causal.causal.engine.token_ids import (
    check_special_tokens,
    check_token_baselines,
    embedding_readers,
    keep_special_tokens,
    special_token_hint,
    token_baseline_error,
)
from lightning_causal.causal.structure.default_layers import default_layers

__all__ = ["LayerCausalMap", "layer_causal_map", "linear_cka"]

INPUT, OUTPUT = "<input>", "<output>"
_BATCH_FIRST = ("A layer built with batch_first=False (nn.TransformerEncoderLayer, recurrent layers) returns [T, N, ...] "
                "(build it with batch_first=True), and a module called on some rows only (an expert of a mixture) returns "
                "fewer: name modules that return every sample first with `layers=`")


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear centred kernel alignment of two representations with the same rows (Kornblith et al. 2019).

    .. math:: CKA(X, Y) = \\frac{\\|Y_c^T X_c\\|_F^2}{\\|X_c^T X_c\\|_F \\, \\|Y_c^T Y_c\\|_F}

    with column-centred ``X_c``, ``Y_c``. Invariant to orthogonal transforms and isotropic scaling;
    ``nan`` when either representation is constant.

    Examples:
        >>> x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
        >>> round(linear_cka(x, 2 * x), 6), round(linear_cka(x, x @ torch.linalg.qr(torch.randn(3, 3))[0]), 4)
        (1.0, 1.0)
    """
    if x.dim() != 2 or y.dim() != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"Expected two matrices with the same rows but got {list(x.shape)} and {list(y.shape)}")
    xc, yc = (x - x.mean(0)).double(), (y - y.mean(0)).double()
    denom = torch.linalg.matrix_norm(xc.T @ xc) * torch.linalg.matrix_norm(yc.T @ yc)
    if denom <= 0:
        return math.nan
    return float(torch.linalg.matrix_norm(yc.T @ xc) ** 2 / denom)


@dataclass
class LayerCausalMap:
    """Result of :func:`layer_causal_map`.

    Attributes:
        layers: the layers in forward order.
        cka: ``[L, L]`` linear CKA of the layers' response profiles.
        nodes: node id -> the contiguous layers merged into it, in order; ``<input>`` and ``<output>``
            (no layers) open and close the chain. A merged node is named ``first..last``.
        edges: ``(source, target, weight)`` along the chain ``input -> node ... -> output``;
            ``weight`` = relative response of the target node (see :func:`layer_causal_map`).
        edge_stats: parallel to ``edges``: ``gain`` (relative response of the target over that of
            the source; infinite where only the target responds, NaN where neither does) and
            ``cka`` (between the source's last and the target's first layer).
        response: relative response of each layer ``[L]``.
        group_effects: node id -> mean ``||Δ||`` per input group ``[G]`` at its first layer, as its ``s`` (the output: mean ``|δ_g|``)
            over the samples in which the group holds an element (padding excluded; 0 where it holds none).
        threshold: the merge threshold.
    """

    layers: list[str]
    cka: Tensor
    nodes: dict[str, list[str]]
    edges: list[tuple[str, str, float]]
    edge_stats: list[dict[str, float]]
    response: Tensor
    group_effects: dict[str, Tensor] = field(default_factory=dict)
    threshold: float = 0.9
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able export (``kind = "layer_map"``; NaN/inf written as strings)."""

        def num(v: float) -> float | str:
            return float(v) if math.isfinite(float(v)) else str(float(v))

        return {
            "kind": "layer_map",
            "layers": list(self.layers),
            "cka": [[num(v) for v in row] for row in self.cka.tolist()],
            "response": [num(v) for v in self.response.tolist()],
            "threshold": float(self.threshold),
            "nodes": [{"id": k, "layers": list(v), "group_effects": [num(g) for g in self.group_effects[k].tolist()]}
                      if k in self.group_effects else {"id": k, "layers": list(v)} for k, v in self.nodes.items()],
            "edges": [{"source": s, "target": t, "weight": num(w), **{k: num(v) for k, v in st.items()}}
                      for (s, t, w), st in zip(self.edges, self.edge_stats)],
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerCausalMap:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(data, dict) or data.get("kind") != "layer_map":
            raise ValueError("Expected argument `data` to be a dict from LayerCausalMap.to_dict() (kind 'layer_map')")
        fl = lambda seq: [float(v) for v in seq]  # noqa: E731
        nodes = {n["id"]: list(n["layers"]) for n in data["nodes"]}
        groups = {n["id"]: torch.tensor(fl(n["group_effects"])) for n in data["nodes"] if "group_effects" in n}
        edges = [(e["source"], e["target"], float(e["weight"])) for e in data["edges"]]
        stats = [{k: float(v) for k, v in e.items() if k not in ("source", "target", "weight")} for e in data["edges"]]
        cka = torch.tensor([fl(r) for r in data["cka"]], dtype=torch.float64)
        return cls(list(data["layers"]), cka, nodes, edges, stats, torch.tensor(fl(data["response"]), dtype=torch.float64),
                   groups, float(data["threshold"]), dict(data.get("meta", {})))


def _clean(forward: Forward, xs: tuple[Tensor, ...], layers: list[str], *, named: bool = True) -> tuple[Tensor, dict[str, Tensor]]:
    """The model's output and the layers' activations on the probe, in forward order. ``named``:
    the user named ``layers`` (each must run, with one row per sample); else (the default layers)
    those that do not are left out (``nn.MultiheadAttention.out_proj``: its weight is used, the
    module does not run unless its ``:input`` site is named)."""
    with warnings.catch_warnings():
        if not named:  # default layers that do not run are left out below, silently
            warnings.filterwarnings("ignore", message=".*did not run in the model's forward pass")
        with capture(forward.model, layers) as acts:
            with _last_calls(forward.model, [k for k in layers if _resolves(forward.model, k)]) as last:
                out = forward(*xs)
    if not isinstance(out, Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        fix = f"; {output_fix(out)}" if isinstance(out, Tensor) and out.dim() > 2 else ""
        raise ValueError(f"Expected a model returning [N, outputs] but it returned {shape}{fix}")
    n = out.shape[0]
    folded = {k: f"{list(v.shape)} for {n} samples" + _calls_note(last.get(k, (0, 1))[1])
              for k, v in acts.items() if k in layers and v.shape[0] != n}
    folded |= _not_samples_first(forward, xs, {k: v for k, v in acts.items() if k in layers and k not in folded})
    missing = [k for k in layers if k not in acts or k in folded]
    if missing and named:
        why = "; ".join(f"{k!r} returned {folded[k]}" if k in folded else f"{k!r} did not run" for k in missing)
        raise ValueError(f"Expected the modules {missing} to run in the forward pass with outputs [N, ...] (N = {n} "
                         f"samples) but {why}." + (f" {_BATCH_FIRST}" if folded else ""))
    if folded:
        shown = "; ".join(f"{k!r} returned {v}" for k, v in list(folded.items())[:6]) + (" ..." if len(folded) > 6 else "")
        warnings.warn(f"The layer map leaves out the modules whose outputs do not hold the samples on dimension 0: "
                      f"{shown}. {_BATCH_FIRST}", UserWarning, stacklevel=3)
    # forward order, a module that runs several times at its last call: the one capture keeps
    kept = {k: acts[k] for k in sorted(acts, key=lambda k: last.get(k, (0, 0))[0]) if k in layers and k not in missing}
    repeated = {k: last[k][1] for k in kept if last.get(k, (0, 1))[1] > 1}
    if repeated:
        shown = ", ".join(f"{k!r} runs {c} times" for k, c in list(repeated.items())[:6])
        warnings.warn(f"The layer map reads a module that runs several times per forward pass at its last call and "
                      f"places it there in the chain of layers: {shown} per forward pass", UserWarning, stacklevel=3)
    if not kept:
        raise ValueError(f"Expected a leaf module with parameters that runs in the forward pass with outputs [N, ...]; name them with "
                         f"`layers=` (none of {missing[:6]} does)" + (f". {_BATCH_FIRST}" if folded else ""))
    return out, kept


def _calls_note(calls: int) -> str:
    """Why a module that runs several times per pass returns too few rows."""
    return "" if calls < 2 else f" at each of its {calls} calls per pass (a module called per sample or per step in a loop)"


#: capture's warning about a module that runs several times per pass
_REPEATED_CAPTURE = "Module .* runs more than once per forward pass"


def _resolves(model: nn.Module, name: str) -> bool:
    try:
        resolve_module(model, name)
    except (AttributeError, KeyError, ValueError):
        return False
    return True


@contextlib.contextmanager
def _last_calls(model: nn.Module, names: list[str]) -> Iterator[dict[str, tuple[int, int]]]:
    """``name -> (index of its last call in the pass, number of calls)``, filled during the block."""
    seen: dict[str, tuple[int, int]] = {}
    ticks = itertools.count()

    def hook(name: str):  # noqa: ANN202
        def note(*_: object) -> None:
            seen[name] = (next(ticks), seen.get(name, (0, 0))[1] + 1)
        return note

    handles = [resolve_module(model, name).register_forward_hook(hook(name)) for name in names]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def _not_samples_first(forward: Forward, xs: tuple[Tensor, ...], acts: dict[str, Tensor]) -> dict[str, str]:
    """Layers whose probe output has as many rows as samples by coincidence (``[T, N, ...]`` with
    ``T = N``): on the first two samples alone (one more pass; the first sample alone for a probe
    of two, as a model that squeezes a batch of one would change shapes) they do not return as
    many rows."""
    n = xs[0].shape[0]
    if not acts or n == 1:
        return {}
    rows = torch.arange(2 if n > 2 else 1, device=xs[0].device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not run in the model's forward pass")
        with capture(forward.model, list(acts)) as few:
            forward(*(x[rows] for x in xs), rows=rows)
    r = len(rows)
    return {k: f"{list(v.shape)} for {n} samples but {list(few[k].shape)} for {r}" for k, v in acts.items()
            if k in few and (few[k].dim() == 0 or few[k].shape[0] != r)}


def _gram_cka(grams: list[Tensor]) -> Tensor:
    """``[L, L]`` linear CKA from centred Gram matrices: ``<K_a, K_b>_F / (||K_a||_F ||K_b||_F)``."""
    flat = torch.stack([k.reshape(-1) for k in grams])
    inner = flat @ flat.T
    norms = inner.diagonal().sqrt()
    denom = norms.unsqueeze(0) * norms.unsqueeze(1)
    return torch.where(denom > 0, inner / denom.clamp_min(1e-300), torch.full_like(inner, math.nan))


def _without_rounding_profiles(cka: Tensor, response: Tensor, dtypes: list[torch.dtype]) -> Tensor:
    """NaN rows and columns (the diagonal entry too, as for a profile of exact zeros) for layers that no intervention reaches: a
    layer whose relative response is within rounding (``4 eps`` of its dtype; a side branch fed by
    forward arguments only, ``meta -> Linear``) has a profile of rounding noise when the
    intervened rows run in other batch compositions than the clean pass (``max_batch_size``), and
    CKA would compare that noise with the other layers (0.1 instead of the NaN of an exact zero)."""
    dead = torch.tensor([float(r) <= 4 * torch.finfo(d).eps for r, d in zip(response.tolist(), dtypes)], device=cka.device)
    if not bool(dead.any()):
        return cka
    cka = cka.clone()
    cka[dead, :] = math.nan
    cka[:, dead] = math.nan
    return cka


#: CKA within this of the threshold counts as reaching it: the CKA of two equal profiles is 1 only up to
#: rounding (``<K, K> / (sqrt<K, K> sqrt<K, K>)``, and float32 profiles of one layer from other batch
#: compositions), so ``threshold=1.0`` would otherwise never merge exact copies.
CKA_ROUNDING = 1e-6


#: Profile rows CKA needs to tell layers apart: the centred Gram matrix of 2 rows is ``[[a, -a], [-a, a]]``
#: for every layer, so the CKA of any two layers is 1 (and undefined for 1 row).
MIN_CKA_ROWS = 3


def _merge(cka: Tensor, threshold: float) -> list[list[int]]:
    """Contiguous groups, complete linkage: a layer joins the current group if its CKA with every member is >= threshold
    (up to :data:`CKA_ROUNDING`)."""
    groups = [[0]]
    for i in range(1, cka.shape[0]):
        if all(float(cka[i, j]) >= threshold - CKA_ROUNDING for j in groups[-1]):  # NaN never merges
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _check(model, threshold, max_rows, seed) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected argument `model` to be a torch.nn.Module but got {type(model)}")
    check_float("threshold", threshold, minimum=0.0, maximum=1.0)
    check_int("max_rows", max_rows, minimum=MIN_CKA_ROWS, none_ok=True)  # 2 rows: every CKA is 1
    check_int("seed", seed, minimum=0)


def layer_causal_map(
    model: nn.Module,
    inputs: Tensor | tuple[Tensor, ...],
    feature_mask: Tensor | tuple[Tensor, ...] | None = None,
    layers: Sequence[str] | None = None,
    *,
    threshold: float = 0.9,
    baseline: float | Tensor = 0.0,
    target: int | Tensor | None = None,
    max_batch_size: int | None = None,
    max_rows: int | None = 1024,
    seed: int = 0,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    special_tokens: Sequence[int] = (),
) -> LayerCausalMap:
    """TRACER's layer causal map: intervene on each input group, trace the change through the layers.

    For every group ``g`` and sample ``x``, ``Δ_L(g, x) = h_L(x) - h_L(x | do(x_g := b))`` is
    recorded at every layer (``G * N`` rows, batched). Layers are compared by
    :func:`linear_cka` of their profiles ``[G*N, D_L]`` (computed exactly from the centred Gram
    matrices of at most ``max_rows`` rows, a random subset drawn by a private generator when
    there are more); contiguous layers with CKA >= ``threshold`` with every member of
    the current node merge into it. The *relative response* of a layer is
    ``s_L = E||Δ_L(g, x)|| / E||h_L(x)||``; the edge into a node carries its ``s`` (how much of
    the intervention reaches it) and the ``gain`` ``s_target / s_source``. The output node uses the
    target logit (``s = E|δ_g(x)| / E|f_t(x)|``), the input node the inputs themselves.

    Args:
        model: any module; ``output`` selects the ``[N, outputs]`` tensor it returns.
        inputs: a tensor ``[N, ...]`` or a tuple of tensors.
        feature_mask: integer group ids broadcastable to the inputs (Captum's convention);
            ``None``: one group per element.
        layers: module names, each once (sorted into forward order; a module that runs several times per pass
            is read at its last call and placed there, with a ``UserWarning``). Default
            (:func:`~lightning_causal.causal.structure.default_layers.default_layers`): the repeated
            blocks of the model when they run as a chain (the residual stream: ``vit.layers.<i>``,
            ``bert.encoder.layer.<i>``, ``model.layers.<i>`` of a Llama, ``encoder.layers.<i>`` of an
            ``nn.TransformerEncoder``, a ResNet's blocks), since the layers inside a block do not (q,
            k and v run side by side); otherwise (plain CNNs, MLPs) every leaf module with
            parameters that runs in the forward pass with one row per sample (those whose outputs
            do not hold the samples first, ``[T, N, ...]``, are left out with a ``UserWarning``).
            Named layers must hold the samples on dimension 0, also on a pass of two probe samples.
        threshold: merge threshold on the CKA, in ``[0, 1]``.
        baseline: the intervention value ``b``. Padded positions (a zero ``attention_mask`` or the
            steps past ``lengths`` in ``additional_forward_args``, see
            :func:`~lightning_causal.causal.engine.ablation.padding_positions`) keep their values,
            as in :func:`~lightning_causal.causal.effects.input_effects.input_effects`, and a layer
            output ``[N, T, ...]`` over the input's positions is read at the real ones only (``Δ_L``,
            ``h_L`` and the CKA leave the padded positions' hidden states out): the same sentences
            padded to another length give the same map.
        target: class whose logit gives the per-group output effects ``|δ_g|`` (``None``: predicted).
        max_batch_size: rows per forward pass.
        max_rows: rows ``(g, x)`` of the profiles entering the CKA (``None``: all; at least 3, as with 2 every CKA
            is 1). Their activation
            changes are kept until the end, outside the memory budget of a forward pass:
            ``max_rows`` times the summed widths of the layers (a CNN on 3x96x96 images with
            layers of 295k, 147k and 295k values: about 3 GiB in float32 at 1024 rows, and one
            layer's copy while its Gram matrix is made); the Gram matrices grow with its square.
            Lower it for large layers.
        seed: seed of the private generator of the row subset.
        special_tokens: token ids no intervention replaces (``</s>`` of BART and T5 classifiers,
            which must read it; see :func:`~lightning_causal.causal.effects.input_effects.input_effects`):
            they keep their tokens, and a group of special tokens only is no row of the map.
        output, additional_forward_args: see :class:`~lightning_causal.causal.engine.forward.Forward`.

    Returns:
        :class:`LayerCausalMap`.

    Examples:
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     _ = model[1].weight.copy_(2 * torch.eye(4)); _ = model[1].bias.zero_()
        >>> x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
        >>> list(layer_causal_map(model, x, torch.tensor([[0, 1, 2, 3]])).nodes)
        ['<input>', '0..1', '3', '<output>']
    """
    _check(model, threshold, max_rows, seed)
    xs = as_tuple(inputs)
    masks = check_feature_mask(xs, feature_mask)
    bases = check_baselines(xs, baseline)
    g, n = num_groups(masks), xs[0].shape[0]
    forward = Forward(model, output=output, additional_forward_args=additional_forward_args, num_samples=n, as_matrix=True)
    model = forward.model
    names = None if layers is None else ([layers] if isinstance(layers, str) else list(layers))
    if names is not None and not names:
        raise ValueError(f"Expected argument `layers` to name at least one module but got {layers!r}")
    for name in names or ():
        resolve_module(model, name)
    twice = sorted({name for name in names or () if names.count(name) > 1})
    if twice:  # each name's hook counted a call: the map warned that the module runs twice per pass
        raise ValueError(f"Expected argument `layers` to name each module once but got {twice} more than once")
    padding = padding_positions(xs[0], additional_forward_args, model=model, num_inputs=len(xs))
    if padding is not None and bool(padding.any()):  # padded positions keep their values: no group holds them
        masks = (masks[0].expand(xs[0].shape).masked_fill(padding.expand(xs[0].shape), g), *masks[1:])
    masks = keep_special_tokens(xs, masks, check_special_tokens(special_tokens), g)  # kept tokens: in no group, no row
    with audit_mode(model), warnings.catch_warnings():
        # said once, by _clean, with where the map places such a module
        warnings.filterwarnings("ignore", message=_REPEATED_CAPTURE)
        with GeneratorWatch() as clean_pass:  # whether the model draws from a global generator: no pass of its own
            if names is None:
                names = default_layers(forward, xs)
                if not names:  # nothing the default could read: say so, not that the `layers` never given were empty
                    raise ValueError(f"Expected the model {type(model).__name__} to hold a module with parameters that the "
                                     "default layers read, but it holds none; name the layers with `layers=`")
            with embedding_readers(model, xs) as readers:  # the clean pass only: which embeddings read token ids
                out, acts = _clean(forward, xs, names, named=layers is not None)
        # a model that draws noise in eval mode: common random numbers, the clean pass again from the blocks' seeds
        noise = common_noise(forward, model, xs, lambda: rows_per_pass(model, xs, max_batch_size, forward=forward),
                             drew=clean_pass.moved)
        if noise is not None:
            out, acts = _seeded_clean(forward, xs, list(acts), noise)
        real_positions = None if padding is None else ~padding.reshape(padding.shape[:2])
        acts = {a: _real_positions(h, real_positions) for a, h in acts.items()}
        check_token_baselines(xs, bases, readers, padding)
        check_samples_independent(forward, xs, out, "A layer causal map")
        order = list(acts)
        tidx = resolve_target(out, target)
        check_finite_samples(xs, gather_target(out, tidx))
        real = _real_rows(xs, masks, g)
        keep = _row_subset(g * n, max_rows, seed, xs[0].device, real)
        grams, norms, logit_delta, in_delta = _trace(forward, xs, masks, bases, acts, out, tidx, keep, max_batch_size,
                                                     real_positions, noise)
    cka = _gram_cka([grams[a] for a in order])
    distinct = _distinct_samples(xs)  # copies of one sample repeat its rows: they add none to the comparison
    rows = min(int(keep.sum()), g * distinct)
    if rows < MIN_CKA_ROWS:  # every 2-row centred Gram matrix is one matrix up to scale: CKA 1 for any two layers
        warnings.warn(
            f"layer_causal_map compares layers by the CKA of their responses over {rows} distinct intervention row(s) (input "
            f"groups x distinct samples, {g} x {distinct}); with fewer than {MIN_CKA_ROWS} every CKA is 1 (2 rows: any two "
            "layers) or undefined (1 row), so it is left undefined (NaN) and no layers merge: pass more (different) samples or "
            "more feature groups", UserWarning, stacklevel=2)
        cka = torch.full_like(cka, math.nan)
    response = torch.stack([norms[a][real].mean() / acts[a].reshape(n, -1).norm(dim=1).mean().clamp_min(1e-12) for a in order]).double()
    cka = _without_rounding_profiles(cka, response, [acts[a].dtype for a in order])
    groups = _merge(cka, float(threshold))
    f_t = gather_target(out, tidx).abs().mean()
    return _build(order, cka, response, groups, norms, logit_delta, in_delta, f_t, xs, g, n, float(threshold), real)


def _real_rows(xs: tuple[Tensor, ...], masks: tuple[Tensor, ...], g: int) -> Tensor:
    """``[G * N]`` booleans, group-major: does group ``g`` hold an element of sample ``n``? An id no
    element carries (superpixels numbered from 1, ids with gaps, a group lying in padding, whose
    elements carry the id ``G``) has rows that change nothing; they enter neither the CKA nor the
    mean responses."""
    return (group_counts(xs, masks, g + 1)[:, :g] > 0).T.reshape(-1)


def _distinct_samples(xs: tuple[Tensor, ...]) -> int:
    """The number of distinct samples (rows equal in every input tensor count once)."""
    n = xs[0].shape[0]
    if n < 2:
        return n
    flat = torch.cat([x.detach().reshape(n, -1).double() for x in xs], 1)
    return int(torch.unique(flat, dim=0).shape[0])


def _row_subset(total: int, max_rows: int | None, seed: int, device: torch.device, real: Tensor | None = None) -> Tensor:
    """Boolean mask of the rows that enter the CKA: the ``real`` rows, at most ``max_rows`` of them
    drawn at random."""
    if real is not None and not bool(real.all()):
        rows = real.nonzero().flatten()
        keep = torch.zeros(total, dtype=torch.bool, device=device)
        if max_rows is not None and rows.numel() > max_rows:
            rows = rows[torch.randperm(rows.numel(), generator=torch.Generator().manual_seed(seed))[:max_rows].to(device)]
        keep[rows] = True
        return keep
    keep = torch.ones(total, dtype=torch.bool, device=device)
    if max_rows is not None and total > max_rows:
        keep.zero_()
        keep[torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:max_rows].to(device)] = True
    return keep


def _real_positions(h: Tensor, real: Tensor | None) -> Tensor:
    """``h`` with the padded positions of a ``[N, T, ...]`` output set to 0 (``real``: ``[N, T]``
    booleans of the input's real positions); other outputs (pooled ``[N, D]``) as they are. The
    explained output does not read padded positions, so their hidden states (which move when a real
    token does: a padded query still attends to the real keys) are no response: counted, they made
    the map depend on the length the probe is padded to."""
    if real is None or h.dim() < 3 or h.shape[:2] != real.shape:
        return h
    return torch.where(real.view(*real.shape, *[1] * (h.dim() - 2)), h, torch.zeros((), dtype=h.dtype, device=h.device))


def _seeded_clean(forward: Forward, xs: tuple[Tensor, ...], layers: list[str], noise: CommonNoise) -> tuple[Tensor, dict[str, Tensor]]:
    """The output and the ``layers``' activations of the probe, each block of samples run from its
    seed (common random numbers with :func:`_trace`'s passes)."""
    outs, got = [], {a: [] for a in layers}
    for k in range(noise.count):
        noise.seed(k)
        s = noise.samples(k, xs[0].device)
        with capture(forward.model, layers) as acts:
            outs.append(forward(*(x[s] for x in xs), rows=s))
        for a in layers:
            got[a].append(acts[a])
    return torch.cat(outs), {a: torch.cat(v) for a, v in got.items()}


def _chunks(g: int, n: int, rows: int, noise: CommonNoise | None, device: torch.device) -> Iterator[tuple[Tensor, int | None]]:
    """``(rows of the flat index, block)`` of each pass of :func:`_trace`: chunks of ``rows``, or with
    ``noise`` one block of samples of one group at a time (``block`` is its seed's)."""
    if noise is None:
        for start in range(0, g * n, rows):
            yield torch.arange(start, min(start + rows, g * n), device=device), None
        return
    for grp in range(g):
        for k in range(noise.count):
            yield grp * n + noise.samples(k, device), k


def _trace(forward, xs, masks, bases, acts, out, tidx, keep, max_batch_size, real_positions=None, noise=None):
    """Run the ``G * N`` interventions; return each layer's centred Gram matrix of the kept rows,
    ``||Δ||`` per row and layer, ``|Δ target logit|`` rows and ``||Δ x||`` rows (at the real
    positions of ``[N, T, ...]`` outputs: :func:`_real_positions`). With ``noise`` (a model that
    draws noise in eval mode) each pass is a block of samples from its seed, as the clean ``acts``."""
    n = xs[0].shape[0]
    g = keep.numel() // n  # not num_groups(masks): padded elements carry the id G
    profiles: dict[str, list[Tensor]] = {a: [] for a in acts}
    norms: dict[str, list[Tensor]] = {a: [] for a in acts}
    logit_rows, input_rows = [], []
    rows = noise.size if noise is not None else rows_per_pass(forward.model, xs, max_batch_size, forward=forward)
    for idx, block in _chunks(g, n, rows, noise, xs[0].device):
        if block is not None:
            noise.seed(block)
        grp, s = idx // n, idx % n
        xi = tuple(ablate_groups(x, m, s, grp, values=sample_rows(b, s)) for x, m, b in zip(xs, masks, bases))
        try:
            with capture(forward.model, list(acts)) as got:
                oi = forward(*xi, rows=s)
        except IndexError as err:  # an embedding that reads indices computed from the ids
            named = token_baseline_error(err, bases)
            if named is None:
                raise
            raise named from err
        except ValueError as err:  # the model refuses the ids: an encoder-decoder without its </s>
            hint = special_token_hint(err, bases)
            if hint is None:
                raise
            raise hint from err
        for a, h in acts.items():
            _check_rows(a, got.get(a), h[s])
            delta = (h[s] - _real_positions(got[a], None if real_positions is None else real_positions[s])).reshape(len(s), -1)  # [N] too
            norms[a].append(delta.norm(dim=1))
            profiles[a].append(delta[keep[idx]].to(torch.promote_types(delta.dtype, torch.float32)))
        logit_rows.append((gather_target(out[s], tidx[s]) - gather_target(oi, tidx[s])).abs())
        input_rows.append(torch.stack([_input_change(x[s], xa) for x, xa in zip(xs, xi)]).norm(dim=0))
    grams = {}
    for a in list(profiles):  # one layer's profiles at a time: each layer's chunks go as its whole is made
        x = torch.cat(profiles.pop(a))  # float32, or float64 for a float64 model; a fresh tensor
        x -= x.mean(0)  # centred in place: no second copy
        grams[a] = (x @ x.T).double()
        del x
    return grams, {a: torch.cat(v) for a, v in norms.items()}, torch.cat(logit_rows), torch.cat(input_rows)


def _check_rows(layer: str, got: Tensor | None, clean: Tensor) -> None:
    """A layer must return one row per intervened row, as it did on the probe: a module called on
    some rows only (an expert of a mixture to which an intervention routes fewer rows, a branch)
    would be compared with the wrong rows, broadcast silently."""
    if got is None or got.shape != clean.shape:
        shape = "nothing (it did not run)" if got is None else list(got.shape)
        if got is not None and got.dim() >= 2 and got.shape[1] == clean.shape[0] != got.shape[0]:
            raise ValueError(
                f"Expected module {layer!r} to return {list(clean.shape)} for a pass of {clean.shape[0]} intervened rows "
                f"but it returned {shape}: its dimension 1 holds the rows, so its probe output [T, N, ...] was read as "
                f"samples first, as its first dimensions were equal. {_BATCH_FIRST}")
        raise ValueError(
            f"Expected module {layer!r} to return {list(clean.shape)} for a pass of {clean.shape[0]} intervened rows, "
            f"as on the probe, but it returned {shape}: it runs on some rows only once inputs are intervened on (an "
            "expert of a mixture, a branch). Name modules that run on every row with `layers=` (e.g. where the "
            "experts' outputs are combined)")


def _input_change(x: Tensor, xa: Tensor | None = None) -> Tensor:
    """``||x − xa||`` per row (``||x||`` without ``xa``); token ids are seen one-hot: a changed
    token moves by √2, a sequence of T tokens has norm √T."""
    if x.is_floating_point() or x.is_complex():  # detached: inputs that require grad made float() of s warn in torch
        return (x if xa is None else x - xa).detach().reshape(x.shape[0], -1).norm(dim=1)  # one value per sample ([N]) too
    if xa is None:
        return torch.full((x.shape[0],), float(x[0].numel()), device=x.device).sqrt()
    return (2.0 * (x != xa).reshape(x.shape[0], -1).sum(1).float()).sqrt()


def _build(order, cka, response, groups, norms, logit_delta, in_delta, f_t, xs, g, n, threshold, real) -> LayerCausalMap:
    held = real.view(g, n)  # group-major: does group g hold an element of sample s (not padding only)?
    per_group = lambda rows: (torch.where(held, rows.view(g, n), 0).sum(1) / held.sum(1).clamp_min(1)).double()  # noqa: E731
    ids = [order[grp[0]] if len(grp) == 1 else f"{order[grp[0]]}..{order[grp[-1]]}" for grp in groups]
    nodes = {INPUT: [], **{i: [order[j] for j in grp] for i, grp in zip(ids, groups)}, OUTPUT: []}
    x_norm = torch.stack([_input_change(x) for x in xs]).norm(dim=0).mean().clamp_min(1e-12)
    s_in = float(in_delta[real].mean() / x_norm)
    s_out = float(logit_delta[real].mean() / f_t.clamp_min(1e-12))
    effects = {INPUT: per_group(in_delta), OUTPUT: per_group(logit_delta)}
    heads = [(INPUT, s_in, None)] + [(i, float(response[grp[0]]), grp) for i, grp in zip(ids, groups)] + [(OUTPUT, s_out, None)]
    for i, grp in zip(ids, groups):
        effects[i] = per_group(norms[order[grp[0]]])
    edges, stats = [], []
    for (src, s_src, g_src), (dst, s_dst, g_dst) in zip(heads, heads[1:]):
        tail = float(response[g_src[-1]]) if g_src is not None else s_src
        # nothing reaches the source: an infinite gain where the target still moves (a skip around it), else undefined
        st = {"gain": s_dst / tail if tail > 0 else (math.inf if s_dst > 0 else math.nan)}
        if g_src is not None and g_dst is not None:
            st["cka"] = float(cka[g_src[-1], g_dst[0]])
        edges.append((src, dst, s_dst))
        stats.append(st)
    return LayerCausalMap(order, cka, nodes, edges, stats, response, effects, threshold,
                          {"groups": g, "samples": n, "input_response": s_in, "output_response": s_out})
