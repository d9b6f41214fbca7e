"""The engine every estimator of the causal core is built on (pure PyTorch).

This is the documented API between the core's modules; estimators import from here rather than
from each other's private names:

- :mod:`~.interventions`: ``Intervention`` (``Zero``, ``SetTo``, ``MeanOf``, ``Resample``,
  ``Scale``, ``Patch``), :func:`intervene` and :func:`capture` (hooks owned by a context manager),
  :func:`resolve_module` (module names as the user writes them), :func:`module_output`.
- :mod:`~.input_sites`: ``"<module>:input"`` names a module's first positional input;
  :func:`input_sites` attaches it for a call (every entry point that takes layer names enters it).
- :mod:`~.forward`: :class:`Forward`, how the core calls a model (``output=`` selection,
  ``additional_forward_args=`` that follow their rows).
- :mod:`~.batching`: the row engine, :func:`rows_per_pass` (chunk size from a memory budget) and
  :func:`map_rows` (evaluate a flat index of (intervention, sample) rows chunk by chunk).
- :mod:`~.ablation`: the do-operator on rows (:func:`ablate_groups`, :func:`replace_units`) and
  :func:`check_baselines`.
- :mod:`~.token_ids`: integer baselines checked against the embeddings that read the token ids
  (:func:`embedding_readers` on the clean pass, :func:`check_token_baselines`).
- :mod:`~.groups`: feature groups (Captum's ``feature_mask``): :func:`group_mask`,
  :func:`aggregate_to_groups`, :func:`broadcast_groups`.
- :mod:`~.ranking`: exact, row-vectorised Spearman, Kendall τ_b and top-k overlap.
- :mod:`~.input_noise`: :func:`input_noise_sd`, the input noise of every stability measure (a share of each
  input element's standard deviation over the samples).
- :mod:`~.state`: :func:`audit_mode`, :func:`rng_preserved`, :func:`resolve_target`,
  :func:`gather_target` (leave no trace; pick the explained class).
- :mod:`~.prefix_cache`: :func:`cache_prefix` runs a model's prefix once and returns a
  :class:`PrefixCache`, a callable ``cache(value, rows)`` that runs only the suffix after a layer
  with every value live at the cut (skip tensors, per-sample forward arguments) taken by row; its
  paths: :mod:`~.suffix` (``torch.fx`` split; :func:`suffix_module`, the strict original),
  :mod:`~.hook_split` (module hooks, for models that do not trace), full forward passes
  (:mod:`~.suffix_runners`: the runners of the fx and full paths); :mod:`~.live_values` (how a
  cached value travels with its rows); :mod:`~.sample_independence` (the check, run on every
  cache, that the model treats its samples independently).
- :mod:`~.noise`: models that draw random numbers in eval mode (MC dropout kept on): detection
  (:func:`noise_scale`) and common random numbers (:class:`CommonNoise`).
- :mod:`~.units`: where a layer's units are (``unit_dim``, ``num_heads``): :func:`resolve_layout`.
- :mod:`~.eager`: compiled models seen as their eager originals.
- :mod:`~.checks`: argument checks with one message style.
- :mod:`~.probe_warnings`: the categories of the warnings about what the given samples hold
  (:class:`ProbeContentsWarning` and its subcategories), for filters by category.
"""

from lightning_causal.causal.engine.ablation import (
    ablate_groups,
    check_baselines,
    replace_units,
    sample_rows,
)
from lightning_causal.causal.engine.batching import (
    DEFAULT_MEMORY_BUDGET,
    check_max_batch_size,
    map_rows,
    rows_per_pass,
)
from lightning_causal.causal.engine.forward import (
    Forward,
    ForwardArgs,
    OutputSpec,
    check_output_spec,
    select_output,
)
from lightning_causal.causal.engine.groups import (
    aggregate_to_groups,
    broadcast_groups,
    check_feature_mask,
    column_mask,
    element_mask,
    group_mask,
    make_feature_mask,
    num_groups,
    patch_mask,
)
from lightning_causal.causal.engine.input_sites import InputSite, input_sites
from lightning_causal.causal.engine.intervention_hooks import (
    RepeatedCallsWarning,
    UnreachedSiteWarning,
)
from lightning_causal.causal.engine.interventions import (
    Intervention,
    MeanOf,
    Patch,
    Resample,
    Scale,
    SetTo,
    Zero,
    capture,
    intervene,
    module_output,
    resolve_module,
)
from lightning_causal.causal.engine.prefix_cache import PrefixCache, cache_prefix
from lightning_causal.causal.engine.probe_warnings import (
    ConstantGroupsWarning,
    ProbeContentsWarning,
    RepeatedSamplesWarning,
)
from lightning_causal.causal.engine.ranking import (
    average_ranks,
    kendall,
    rank_positions,
    spearman,
    topk_overlap,
)
from lightning_causal.causal.engine.state import (
    as_tuple,
    audit_mode,
    frozen_params,
    gather_target,
    resolve_target,
    rng_preserved,
)
from lightning_causal.causal.engine.suffix import suffix_module
from lightning_causal.causal.engine.units import Layout, resolve_layout

__all__ = [
    "ConstantGroupsWarning",
    "ProbeContentsWarning",
    "RepeatedSamplesWarning",
    "RepeatedCallsWarning",
    "UnreachedSiteWarning",
    "InputSite",
    "input_sites",
    "DEFAULT_MEMORY_BUDGET",
    "Forward",
    "ForwardArgs",
    "Intervention",
    "Layout",
    "MeanOf",
    "OutputSpec",
    "Patch",
    "PrefixCache",
    "Resample",
    "Scale",
    "SetTo",
    "Zero",
    "ablate_groups",
    "aggregate_to_groups",
    "as_tuple",
    "audit_mode",
    "average_ranks",
    "broadcast_groups",
    "cache_prefix",
    "capture",
    "check_baselines",
    "check_feature_mask",
    "check_max_batch_size",
    "check_output_spec",
    "column_mask",
    "element_mask",
    "frozen_params",
    "gather_target",
    "group_mask",
    "intervene",
    "kendall",
    "make_feature_mask",
    "map_rows",
    "module_output",
    "num_groups",
    "patch_mask",
    "rank_positions",
    "replace_units",
    "resolve_layout",
    "resolve_module",
    "resolve_target",
    "rng_preserved",
    "rows_per_pass",
    "sample_rows",
    "select_output",
    "spearman",
    "suffix_module",
    "topk_overlap",
]
