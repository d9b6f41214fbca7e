"""LayerMapAudit: TRACER's layer causal map of the model, drawn as merged causal nodes."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from torch import Tensor, nn

from lightning_causal.audits.base import Audit, AuditResult, Probe, layer_names, whole_model
from lightning_causal.audits.input_effects import probe_groups
from lightning_causal.audits.label_task import GUESS_ROWS
from lightning_causal.audits.options import (
    check_baseline,
    check_mask_options,
    check_target,
    first_row_outputs,
    single_input_error,
    warn_predicted_class_of_regression,
)
from lightning_causal.audits.top_share import RULED_OUT_FIX, RULED_OUT_TARGET
from lightning_causal.causal.engine.checks import check_float, check_int, check_seed
from lightning_causal.causal.engine.forward import OutputSpec
from lightning_causal.causal.engine.interventions import resolve_module
from lightning_causal.causal.engine.layer_calls import calls_counted
from lightning_causal.causal.engine.token_ids import check_special_tokens
from lightning_causal.causal.structure.layer_map import MIN_CKA_ROWS, layer_causal_map

__all__ = ["LayerMapAudit", "layer_map_notes"]


def layer_map_notes(meta: dict) -> list[str]:
    """The lines that say which layers a layer map leaves out of its default layers, which it holds but no
    intervention moves (``LayerCausalMap.meta``'s ``left_out`` and ``unmoved``), and which it reads at the last of
    several calls per forward pass (``last_call``: a shared encoder, a block applied repeatedly), for the audit's notes;
    a layer left out as it runs on some rows only is told with what it returned on how many rows (``rerouted``).

    Args:
        meta: a :class:`~lightning_causal.causal.structure.layer_map.LayerCausalMap`'s ``meta`` (its
            ``samples``, ``left_out``, ``rerouted``, ``unmoved`` and ``last_call`` entries are read).

    Examples:
        >>> for note in layer_map_notes({"samples": 16, "left_out": {"fc1": "a dead ReLU after it"}, "unmoved": ["fc2"],
        ...                              "last_call": {"enc.0": 2}}):
        ...     print(note)
        left out of the default layers: fc1 (a dead ReLU after it)
        no intervention moves fc2 on the 16 probe samples (response 0, CKA NaN: a dead ReLU before it, or no path from the explained input)
        read at their last call only (response, CKA, place in the chain), as they run several times per forward pass: enc.0 (up to 2 calls a pass on the probe)
    """
    by_why: dict[str, list[str]] = {}
    for layer, why in (meta.get("left_out") or {}).items():
        by_why.setdefault(why, []).append(layer)
    rerouted = meta.get("rerouted") or {}

    def told(layers: list[str]) -> str:  # what each expert returned, where the map says it
        return "".join(f"; {layer} {rerouted[layer]}" for layer in layers if layer in rerouted)

    notes = [f"left out of the default layers: {', '.join(layers)} ({why}{told(layers)})" for why, layers in by_why.items()]
    unmoved = meta.get("unmoved") or []
    if unmoved:
        it = "it" if len(unmoved) == 1 else "them"
        notes.append(f"no intervention moves {', '.join(unmoved)} on the {meta.get('samples')} probe samples "
                     f"(response 0, CKA NaN: a dead ReLU before {it}, or no path from the explained input)")
    last_call = meta.get("last_call") or {}
    if last_call:
        notes.append("read at their last call only (response, CKA, place in the chain), as they run several times per "
                     "forward pass: " + ", ".join(f"{layer} ({calls_counted(calls)})" for layer, calls in last_call.items()))
    return notes


class LayerMapAudit(Audit):
    """TRACER's layer causal map (:func:`~lightning_causal.causal.structure.layer_map.layer_causal_map`).

    Reports the map (``graphs["layer_map"]``: CKA matrix and merged nodes), ``n_nodes`` (causal
    nodes after merging), ``n_layers`` (the layers mapped, before merging), ``output_response`` (the
    explained output's relative response ``E|δ_g| / E|f_t|`` over the (group, sample) rows: the ``s``
    of the edge into ``<output>``), ``mean_adjacent_cka`` (over the adjacent pairs of layers whose CKA is
    defined: a layer no intervention moves has none), the relative response of every layer (vector
    ``layer_response``, compared across epochs as drift) and a table of the nodes.

    Args:
        feature_mask: integer group ids broadcastable to one input ``[1, ...]``, or a function of
            the probe's inputs that returns them, ``[1, ...]`` or one mask per sample ``[N, ...]``
            (word pieces grouped into words), as in
            :class:`~lightning_causal.audits.input_effects.InputEffectAudit`; the rows of the map are
            the (group, sample) pairs where the sample has the group; a pair whose group already holds the
            baseline there (a zero pixel of a background with the default baseline 0) is a row of zeros, not run
            (see :func:`~lightning_causal.causal.structure.layer_map.layer_causal_map`).
        patch_size: square patches for image inputs, cubes for volumes (the default groups are single elements).
        layers: module names. Default: the repeated blocks of the model when they run as a chain
            (a transformer's residual stream: ``vit.layers.<i>``, ``bert.encoder.layer.<i>``,
            ``model.layers.<i>``, ``encoder.layers.<i>`` of ``nn.TransformerEncoder``; a ResNet's
            blocks), as the layers inside a block do not form one (q, k and v run side by side);
            otherwise (plain CNNs and MLPs) every leaf module with parameters that runs in the
            forward pass with one row per sample. See
            :func:`~lightning_causal.causal.structure.default_layers.default_layers`.
        threshold: CKA merge threshold.
        baseline: the input intervention value.
        target: class whose logit gives the output effects; ``None`` = predicted.
        max_rows: intervention rows entering the CKA (at least 3: with 2 every CKA is 1); their activation changes at every layer are
            held until the end (``max_rows`` times the layers' summed widths, outside the memory
            budget of a pass: lower it for large image layers; see ``layer_causal_map``).
        seed: seed of the private generator that draws the ``max_rows`` rows of the CKA when there are more
            (the global RNG is untouched); another seed, another subset.
        special_tokens: token ids no intervention replaces (e.g. ``(eos_id,)`` for BART or T5
            classifiers, which must read their ``</s>``); a group of them only is no row of the map.
        output: which tensor of the model's return value is explained (see :class:`Audit`).
        name: tag of the audit (default ``"layer_map"``).

    Examples:
        >>> import torch
        >>> from lightning_causal.models import MLP
        >>> r = LayerMapAudit().run(MLP(4), Probe(torch.randn(8, 4)))
        >>> r.graphs["layer_map"]["kind"], r.vectors["layer_response"].shape
        ('layer_map', torch.Size([3]))
    """

    def __init__(
        self,
        feature_mask: Tensor | Callable[[Tensor], Tensor] | None = None,
        patch_size: int | None = None,
        layers: Sequence[str] | None = None,
        *,
        threshold: float = 0.9,
        baseline: float | Tensor = 0.0,
        target: int | None = None,
        max_rows: int | None = 1024,
        seed: int = 0,
        special_tokens: Sequence[int] = (),
        output: OutputSpec = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name, output=output)
        self.special_tokens = check_special_tokens(special_tokens)
        check_mask_options(feature_mask, patch_size, function_ok=True)
        check_float("threshold", threshold, minimum=0.0, maximum=1.0)
        self.layers = None if layers is None else layer_names(layers)
        twice = sorted({name for name in self.layers or () if self.layers.count(name) > 1})
        if twice:
            raise ValueError(f"Expected argument `layers` to name each module once but got {twice} more than once")
        self.max_rows = check_int("max_rows", max_rows, minimum=MIN_CKA_ROWS, none_ok=True)  # 2 rows: every CKA is 1
        self.seed = check_seed(seed)
        self.feature_mask, self.patch_size, self.threshold = feature_mask, patch_size, float(threshold)
        self.baseline, self.target = check_baseline(baseline), check_target(target)

    def validate(self, model: nn.Module, probe: Probe) -> None:
        if isinstance(probe.inputs, tuple):
            raise single_input_error("LayerMapAudit", probe.inputs)
        probe_groups("LayerMapAudit", self.feature_mask, self.patch_size, probe.first)
        for layer in self.layers or ():
            resolve_module(model, layer)

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        self.validate(model, probe)
        x = probe.first
        if self.target is None:
            warn_predicted_class_of_regression(f"LayerMapAudit {self.name!r}", probe.labels, first_row_outputs(model, probe, self.output, rows=GUESS_ROWS),
                                               model=model, output=self.output)
        lm = layer_causal_map(model, x, probe_groups("LayerMapAudit", self.feature_mask, self.patch_size, x), self.layers,
                              threshold=self.threshold, baseline=self.baseline, target=self.target, special_tokens=self.special_tokens,
                              max_batch_size=max_batch_size, max_rows=self.max_rows, seed=self.seed,
                              **self.model_options(probe))
        result = AuditResult(self.name, graphs={"layer_map": lm.to_dict()})
        result.graphs["layer_map"].setdefault("meta", {})["whole_model"] = whole_model(model)  # the figure's title names its class
        notes = layer_map_notes(lm.meta)
        if notes:
            result.meta["notes"] = notes
        hidden = [k for k, v in lm.nodes.items() if v]
        # a layer no intervention moves (dead units, an input-independent branch) has no CKA (NaN): left out of the mean
        adjacent = [float(lm.cka[i, i + 1]) for i in range(len(lm.layers) - 1) if not math.isnan(float(lm.cka[i, i + 1]))]
        result.scalars["n_nodes"] = float(len(hidden))
        result.scalars["n_layers"] = float(len(lm.layers))
        if adjacent:
            result.scalars["mean_adjacent_cka"] = sum(adjacent) / len(adjacent)
        result.scalars["output_response"] = float(lm.meta["output_response"])
        if not math.isfinite(result.scalars["output_response"]):  # else NaN on the card with no word of why
            result.meta.setdefault("notes", []).append(
                f"output_response is not finite ({result.scalars['output_response']}): the explained output is not finite, "
                f"clean or under the input interventions (a diverged model, or {RULED_OUT_TARGET}: {RULED_OUT_FIX})")
        result.vectors["layer_response"] = lm.response.float()
        result.meta["vector_entries"] = {"layer_response": list(lm.layers)}  # drift compares the same layers only
        index = {layer: i for i, layer in enumerate(lm.layers)}
        rows = [{"node": k, "layers": len(v), "response": float(lm.response[index[v[0]]])} for k, v in lm.nodes.items() if v]
        # by response, largest first, as every audit's table is by its effect (the card's top nodes are its first rows)
        result.tables["nodes"] = sorted(rows, key=lambda row: -row["response"] if row["response"] == row["response"] else math.inf)
        return result
