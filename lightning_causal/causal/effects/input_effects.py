"""Causal effects of interventions on input features: per-sample effects δ_g(x), interventional
expectations μ_g(α) and the average causal effect (ACE).

Every estimator enumerates *rows* (an intervention applied to one sample) and evaluates them in
large forward passes chunked to a memory budget (:mod:`lightning_causal.causal.engine.batching`).
The model is called through :class:`~lightning_causal.causal.engine.forward.Forward`: ``output=``
picks the explained tensor, ``additional_forward_args=`` travel with their rows. The values an
interventional expectation sets each group to (given, or the group's quantiles over the probe) are
built in :mod:`~lightning_causal.causal.effects.value_grid`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from lightning_causal.causal.effects.input_attribution import input_attribution_estimates
from lightning_causal.causal.effects.input_layer import input_layer_effects
from lightning_causal.causal.effects.value_grid import code_groups, value_grid
from lightning_causal.causal.engine.ablation import (
    ablate_groups,
    changed_groups,
    check_baselines,
    input_padding,
    sample_rows,
    unpadded_masks,
)
from lightning_causal.causal.engine.batching import map_rows, rows_per_pass
from lightning_causal.causal.engine.checks import check_choice
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.groups import (
    check_feature_mask,
    group_counts,
    num_groups,
)
from lightning_causal.causal.engine.linked_samples import check_rows_independent
from lightning_causal.causal.engine.noise import CommonNoise, GeneratorWatch, common_noise
from lightning_causal.causal.engine.padded_reads import explained_target
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning
from lightning_causal.causal.engine.stacked_rows import rows_alone_checked
from lightning_causal.causal.engine.state import (
    as_tuple,
    audit_mode,
    gather_target,
    rnn_backward,
)
from lightning_causal.causal.engine.token_ids import (
    check_special_tokens,
    check_token_baselines,
    embedding_readers,
    float_codes_named,
    keep_special_tokens,
    token_errors_named,
    warn_padding_filled,
)
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["input_effects", "interventional_expectations", "average_causal_effect", "InputMethod", "INPUT_METHODS"]

Inputs = Tensor | tuple[Tensor, ...]
Target = int | Tensor | None
Mask = Tensor | tuple[Tensor, ...] | None
InputMethod = Literal["exact", "attribution"]
INPUT_METHODS: tuple[InputMethod, ...] = get_args(InputMethod)  # the values `method` takes


def clean_target(forward: Forward, xs: tuple[Tensor, ...], target: Target, noise: CommonNoise | None = None, *,
                 max_batch_size: int | None = None) -> tuple[Tensor, Tensor]:
    """``(class indices [N], target outputs f_t(x) [N])`` of the clean inputs (with ``noise``: each
    block of samples run from its seed, :class:`~lightning_causal.causal.engine.noise.CommonNoise`).
    With ``max_batch_size=1`` (the stacked-rows refusal's advice, :data:`~lightning_causal.causal.engine.stacked_rows.WAY_OUT`)
    the intervened rows run alone, and so do the clean samples, one pass each after the checked whole pass: a model
    that branches on its batch's statistic gives each sample's clean output alone, as its intervened rows (the whole
    probe's clean output beside rows run alone mixed two branches: up to 1.08 off a per-sample loop). Other values of
    ``max_batch_size`` keep the one clean pass.

    The first clean pass (no ``noise``) also checks that two probe samples run alone give their
    outputs in the batch (:func:`~lightning_causal.causal.engine.linked_samples.check_rows_independent`,
    one pass of 2 rows): the intervened rows run in batches of the row engine's choosing, so a model
    whose samples are linked (the nodes of one graph, with its ``edge_index`` or adjacency as a forward
    argument or inside the model; a BatchNorm without running statistics) is refused before them,
    not answered with effects that depend on the batching.

    Args:
        forward: the model's prepared :class:`~lightning_causal.causal.engine.forward.Forward`.
        xs: the inputs ``[N, ...]``.
        target: class index, per-sample indices ``[N]``, or ``None`` (the predicted class), as in
            :func:`input_effects`.
        noise: the common random numbers of a model that draws noise; ``None``: one plain pass.
        max_batch_size: the estimator's rows per pass, as given; ``1``: the clean samples run alone too.
    """
    out = forward(*xs) if noise is None else noise.clean(lambda s: forward(*(x[s] for x in xs), rows=s), xs[0].device)
    if noise is None:
        check_rows_independent(forward, xs, out, "Intervening on the inputs", one_row=max_batch_size == 1)
        if max_batch_size == 1 and xs[0].shape[0] > 1:  # each sample alone, as its intervened rows run
            out = map_rows(xs[0].shape[0], 1, lambda s: forward(*(x[s] for x in xs), rows=s), xs[0].device)
    return explained_target(forward, xs, out, target, "Intervening on the inputs", warn=noise is None)


def input_effects(
    model: nn.Module,
    inputs: Inputs,
    feature_mask: Mask = None,
    baseline: float | int | complex | Tensor | tuple = 0.0,
    *,
    target: Target = None,
    max_batch_size: int | None = None,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    input_layer: str | None = None,
    method: InputMethod = "exact",
    special_tokens: Sequence[int] = (),
) -> Tensor:
    r"""Per-sample effect of do(x_g := b) on the target output, for each feature group g.

    .. math:: \delta_g(x) = f_t(x) - f_t(x \mid do(x_g := b))

    With a constant baseline this equals Captum's ``FeatureAblation`` for group g (TRACER's input
    interventions; Chattopadhyay et al. 2019). All ``G * N`` interventions run in batched forward
    passes of at most ``max_batch_size`` rows (default: a 512 MiB activation budget); a row whose
    intervention changes nothing (the group already equals the baseline) is not run (effect 0).
    A model that draws random numbers in eval mode (MC dropout kept on) runs with common random
    numbers, each sample drawing one noise in its clean and intervened passes, with a
    ``UserWarning`` (:mod:`~lightning_causal.causal.engine.noise`).

    Args:
        model: any module; ``output`` selects the ``[N, classes]`` (or ``[N]``) tensor it returns.
        inputs: a tensor ``[N, ...]`` or a tuple of tensors; integer tensors are token ids.
        feature_mask: integer group ids ``0..G-1`` broadcastable to each input (Captum's
            convention); ``None``: one group per element (per position for token ids ``[N, T]``).
        baseline: scalar, tensor broadcastable to the input, or a tuple (one per input); an
            integer (a token id, e.g. pad or ``[MASK]``; a pixel value of uint8 images) for integer inputs,
            ``False``/``True`` for bool masks, a complex number for complex inputs if not 0.
        target: class index, per-sample indices ``[N]``, or ``None`` (the predicted class).
        max_batch_size: rows per forward pass.
        output: which tensor of the model's return value to explain (``None``: a tensor,
            ``.logits`` or ``["logits"]``; a key, an index or a callable).
        additional_forward_args: passed after the inputs (tuple: positional; Mapping: keywords);
            tensors with ``N`` rows travel with their samples (attention masks).
        input_layer: a module name (e.g. ``"bert.embeddings.word_embeddings"``) whose output
            receives the interventions instead of the input, as Captum's layer methods do
            (:mod:`~lightning_causal.causal.effects.input_layer`): its output must start with the
            input's shape (``[N, T, D]`` for ids ``[N, T]``), groups are those of the input
            positions, and ``b`` is a value of that output (``0.0``: the zero vector; a vector
            ``[D]``) or, for token inputs, an integer token id whose layer output is the reference
            (the embedding of ``[MASK]``). One input tensor only.
        method: ``"exact"`` (interventions), or ``"attribution"``: the first-order estimate
            ``Σ_{i∈g} (x_i − b_i) ∂f_t/∂x_i`` from one forward and one backward pass
            (:mod:`~lightning_causal.causal.effects.input_attribution`; floating point inputs, and complex ones:
            ``Re(conj(∂f_t/∂x_i) (x_i − b_i))``; features whose estimate is 0 at every sample while setting them
            to the baseline moves the output are warned about).
        special_tokens: token ids that no intervention replaces in the first input (token ids): the
            end-of-sequence token ``</s>`` that an encoder-decoder classifier (BART, T5) must read,
            ``[CLS]``/``[SEP]``. A position holding one keeps its token (its group of one has effect
            0); a group that holds one replaces its other tokens only. The same name and meaning as
            :class:`~lightning_causal.audits.captum_baseline.CompareSettings`'s ``special_tokens``.

    Returns:
        Tensor ``[N, G]``.

    Examples:
        >>> model = nn.Linear(3, 1, bias=False)
        >>> _ = model.weight.data.copy_(torch.tensor([[1.0, 2.0, -1.0]]))
        >>> input_effects(model, torch.ones(1, 3), torch.tensor([[0, 1, 1]]))
        tensor([[1., 1.]])

        Token ids, one group per position, the baseline a token id; on the embedding layer with
        the zero vector as reference:

        >>> emb = nn.Sequential(nn.Embedding(5, 2), nn.Flatten(), nn.Linear(6, 1))
        >>> ids = torch.tensor([[1, 2, 3]])
        >>> input_effects(emb, ids, baseline=0).shape, input_effects(emb, ids, input_layer="0").shape
        (torch.Size([1, 3]), torch.Size([1, 3]))
    """
    xs = as_tuple(inputs)
    masks = check_feature_mask(xs, feature_mask)
    n, g = xs[0].shape[0], num_groups(masks)
    forward = Forward(model, output=output, additional_forward_args=additional_forward_args, num_samples=n)
    check_choice("method", method, INPUT_METHODS)
    masks = keep_special_tokens(xs, masks, check_special_tokens(special_tokens), g)  # special tokens: in no group
    if input_layer is not None:
        if len(xs) != 1 or not isinstance(input_layer, str) or method != "exact":
            raise ValueError(
                f"Expected one input tensor, a module name as `input_layer` and method='exact' but got {len(xs)} inputs, "
                f"{input_layer!r} and {method!r}"
            )
        with rows_alone_checked("input_effects", model=forward.model):
            return input_layer_effects(model, xs[0], masks[0], baseline, layer=input_layer, target=target,
                                       max_batch_size=max_batch_size, forward=forward, num_groups=g,
                                       forward_args=additional_forward_args)
    bases = check_baselines(xs, baseline)
    # the attribution estimate backpropagates: autograd must work even under a caller's inference_mode
    with torch.inference_mode(False) if method == "attribution" else contextlib.nullcontext(), audit_mode(forward.model), \
            rows_alone_checked("input_effects", model=forward.model), \
            rnn_backward(forward.model, method == "attribution"):
        if method == "attribution":
            return input_attribution_estimates(forward, xs, masks, bases, num_groups=g, target=target, max_batch_size=max_batch_size)
        # the clean pass only: which embeddings read the ids, and whether the model draws from a global generator
        with embedding_readers(forward.model, xs) as readers, GeneratorWatch() as clean_pass:
            tidx, f0 = clean_target(forward, xs, target, max_batch_size=max_batch_size)
        padding = input_padding(xs, additional_forward_args, model=forward.model)  # of the input the argument describes
        check_token_baselines(xs, bases, readers, padding)
        warn_padding_filled(xs, masks, bases, readers, g, padding)  # an nn.EmbeddingBag's padding set to an item
        rows = max(1, rows_per_pass(forward.model, xs, max_batch_size, forward=forward))
        noise = common_noise(forward, forward.model, xs, rows, drew=clean_pass.moved)  # None unless the model draws noise
        if noise is not None:
            tidx, f0 = clean_target(forward, xs, target, noise)
        changed = changed_groups(xs, masks, bases, g, padding).T  # [G, N]
        if not bool(changed.any()):  # a probe of zeros with the default baseline 0: the zeros would read as "no effect"
            one = n > 1 and all(bool((x == x[:1]).all()) for x in xs)  # samples of one value: the first rows of an ordered dataset
            warnings.warn(
                "input_effects: every group of every sample already equals `baseline`, so no intervention changes the input "
                "and every effect is exactly 0 (whatever the model); pass a `baseline` the inputs differ from"
                + (f", or samples that differ: the {n} samples hold one value (the first rows of a dataset ordered by "
                   "this input, as an auto-decoder's rows of one image id): explain a random set of rows (the callback's "
                   "`probe=`)" if one else ""),
                ProbeContentsWarning, stacklevel=outside_package())
        masks = unpadded_masks(xs, masks, padding, g)  # padded positions keep their tokens: a group changes its real ones only

        def evaluate(idx: Tensor) -> Tensor:
            grp, s = idx // n, idx % n
            xi = tuple(ablate_groups(x, m, s, grp, values=sample_rows(b, s)) for x, m, b in zip(xs, masks, bases))
            with token_errors_named(bases):  # an embedding the readers did not see; an encoder-decoder without its </s>
                return gather_target(forward(*xi, rows=s), tidx[s])

        ablated = active_rows(changed, f0, rows, evaluate) if noise is None else noise.active(changed, f0, evaluate)
    return (f0.unsqueeze(0) - ablated).T.contiguous()


def active_rows(changed: Tensor, f0: Tensor, rows: int, evaluate: Callable[[Tensor], Tensor]) -> Tensor:
    """Evaluate only the rows whose intervention changes the input; the others keep the clean
    output ``f0`` (their effect is exactly 0). ``changed`` is ``[..., N]``; row index = flat index.

    Args:
        changed: booleans ``[..., N]``: whether each row's intervention changes its input.
        f0: the clean target outputs ``[N]``.
        rows: rows per forward pass.
        evaluate: ``evaluate(idx)`` -> the target outputs ``[r]`` of the rows at flat indices ``idx``.
    """
    out = f0.expand_as(changed).clone()
    active = changed.reshape(-1).nonzero().squeeze(1)
    if active.numel():
        out.view(-1)[active] = map_rows(active.numel(), rows, lambda idx: evaluate(active[idx]), f0.device)
    return out


def interventional_expectations(
    model: nn.Module,
    inputs: Inputs,
    feature_mask: Mask = None,
    values: Tensor | str = "quantiles",
    *,
    target: Target = None,
    max_batch_size: int | None = None,
    num_values: int = 8,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
) -> tuple[Tensor, Tensor]:
    """μ_g(α) = E_x[f_t(x | do(x_g := α))] for each group g and value α (Chattopadhyay et al. 2019).

    Padding (an ``attention_mask`` or ``lengths`` argument, a keyword or a positional one so named by the forward, see
    :func:`~lightning_causal.causal.engine.ablation.padding_positions`) is not part of any group:
    padded positions keep their values, are left out of the quantiles, and ``E_x`` runs over the
    samples where ``g`` holds a real position (``E[f_t(x)]`` where it holds none), so the curves do
    not shrink with the share of samples too short to reach ``g``. Per-sample groups ``[N, ...]``
    count the same way, padded or not: a sample that does not have group ``g`` (the fifth word of a
    four-word sentence, a superpixel id absent from an image) is left out of ``μ_g``.

    Args:
        model: any module, as in :func:`input_effects`.
        inputs: a tensor ``[N, ...]`` or a tuple of tensors, as in :func:`input_effects`.
        feature_mask: integer group ids ``0..G-1`` broadcastable to each input; ``None``: one group per
            element, as in :func:`input_effects`.
        values: ``[K]`` values shared by all groups, ``[G, K]`` per group, or ``"quantiles"``
            (``num_values`` quantiles, 5% to 95%, of each group's values over ``inputs``; 0% to 100% for a sparse group
            whose 5%-95% quantiles are one value although it varies, a flag set in a few samples; a group
            constant over ``inputs`` gets one value, a flat curve, and a ``UserWarning`` says so).
            A group in an integer input of a tuple (category codes ``x_cat`` beside ``x_cont``)
            takes whole values only: its quantiles are observed codes (nearest rank), and a
            fraction in ``values`` for it is a ``ValueError``; beside codes the grid is at least
            ``float32`` (``bfloat16`` holds whole numbers up to 256 only), the values of a half
            precision input's groups rounded to its dtype, as they are set.
        target: class index, per-sample indices ``[N]``, or ``None`` (the predicted class), as in
            :func:`input_effects`.
        max_batch_size: rows per forward pass, as in :func:`input_effects`.
        output: which tensor of the model's return value to explain, as in :func:`input_effects`.
        additional_forward_args: extra forward arguments, as in :func:`input_effects`.
        num_values: the number of quantiles per group with ``values="quantiles"`` (an integer >= 2).

    Returns:
        ``(mu [G, K], values [G, K])``.

    Examples:
        For ``f(x) = 2 x_0 - x_1`` on two samples with ``x_1 = 1`` and ``E[x_0] = 2``,
        ``μ_0(α) = 2α - 1`` and ``μ_1(α) = 4 - α``:

        >>> model = nn.Linear(2, 1, bias=False)
        >>> _ = model.weight.data.copy_(torch.tensor([[2.0, -1.0]]))
        >>> mu, values = interventional_expectations(model, torch.tensor([[1.0, 1.0], [3.0, 1.0]]), torch.tensor([[0, 1]]),
        ...                                          torch.tensor([0.0, 1.0]))
        >>> mu
        tensor([[-1.,  1.],
                [ 4.,  3.]])
    """
    xs = as_tuple(inputs)
    masks = check_feature_mask(xs, feature_mask)
    if not any(x.is_floating_point() for x in xs):
        raise TypeError(f"Expected floating point `inputs` for interventional expectations over values but got dtype {xs[0].dtype}; "
                        "token ids have no values between tokens to set: for their effects use `input_effects(model, ids, "
                        "baseline=<[MASK] id>)`, or at the embeddings `input_effects(..., input_layer=<embedding layer>)`")
    g = num_groups(masks)
    padding = input_padding(xs, additional_forward_args, model=model)  # of the input the argument describes
    pooled = unpadded_masks(xs, masks, padding, g)
    grid = value_grid(xs, pooled, values, num_values, g)  # padded positions: in no group's quantiles, never set
    if not torch.isfinite(grid).all():
        raise ValueError("Expected argument `values` to be finite but it holds NaN or infinity")
    n = xs[0].shape[0]
    forward = Forward(model, output=output, additional_forward_args=additional_forward_args, num_samples=n)
    with audit_mode(forward.model), rows_alone_checked("interventional_expectations", model=forward.model):
        # the clean pass only: which embeddings read integer inputs (codes), and whether the model draws from a global generator
        with embedding_readers(forward.model, xs) as readers, GeneratorWatch() as clean_pass:
            tidx, f0 = clean_target(forward, xs, target, max_batch_size=max_batch_size)
        codes = code_groups(xs, masks, readers, g)  # codes kept in float columns: quantiles of observed codes too
        if isinstance(values, str) and bool(codes.any()):
            with warnings.catch_warnings():  # what the grid warns of, the first one said
                warnings.simplefilter("ignore")
                grid = value_grid(xs, pooled, values, num_values, g, float_codes=codes)
        k = grid.shape[1]
        flat = grid.T.reshape(-1)  # row order: value k, group g
        rows = max(1, rows_per_pass(forward.model, xs, max_batch_size, forward=forward))
        noise = common_noise(forward, forward.model, xs, rows, drew=clean_pass.moved)  # None unless the model draws noise
        if noise is not None:
            tidx, f0 = clean_target(forward, xs, target, noise)
        # [K, G, N]: rows where x_g already equals α (or g lies in padding) are no-ops and keep f0
        settings = [tuple(grid[:, kk][m].to(x.dtype) for x, m in zip(xs, masks)) for kk in range(k)]
        for kk, bases in enumerate(settings):  # a code no embedding can look up: named before any intervened pass
            try:  # a value such as 1.4 given for a code column runs as code 1 (docs/recipes.md): not warned of
                check_token_baselines(xs, bases, readers, padding, fractions=False)
            except ValueError as err:
                raise ValueError(str(err).replace("Expected argument `baseline`", f"Expected argument `values` (column {kk})", 1)
                                 .replace("a token id", "a code", 1)) from err
        changed = torch.stack([changed_groups(xs, masks, bases, g, padding).T for bases in settings])

        def evaluate(idx: Tensor) -> Tensor:
            kg, s = idx // n, idx % n
            grp = kg % g
            v = flat[kg]  # one value per row, shaped for each input (an image [N, C, H, W] beside a table [N, D])
            xi = tuple(ablate_groups(x, m, s, grp, values=v.view([-1] + [1] * (x.dim() - 1)).to(x.dtype))
                       for x, m in zip(xs, pooled))
            with float_codes_named(xs, "values", "these values"):  # a code column cast inside the model set to no code
                return gather_target(forward(*xi, rows=s), tidx[s])

        out = active_rows(changed, f0, rows, evaluate) if noise is None else noise.active(changed, f0, evaluate)
    keep = None if padding is None else tuple(None if pad is None else ~pad for pad in padding)
    real = group_counts(xs, masks, g, keep) > 0  # [N, G]: the samples where g holds a real element
    if padding is None and bool(real.all()):
        return out.mean(-1).T.contiguous(), grid
    real = real.T.to(out.dtype)
    count = real.sum(-1)
    mu = (out * real).sum(-1) / count.clamp_min(1)  # [K, G]
    return torch.where(count > 0, mu, f0.mean()).T.contiguous(), grid  # a group real nowhere: μ_g = E[f_t(x)]


def average_causal_effect(
    model: nn.Module,
    inputs: Inputs,
    feature_mask: Mask = None,
    values: Tensor | str = "quantiles",
    **options: Any,
) -> Tensor:
    """Average causal effect curve of each feature group (Chattopadhyay et al. 2019).

    .. math:: ACE_g(α) = μ_g(α) - \\frac{1}{K} \\sum_{α'} μ_g(α')

    The centring departs from the paper, which subtracts ``baseline_g = E_{α∼x_g}[μ_g(α)]``, the curve's mean
    over the feature's own distribution: here it is the mean over the ``K`` values of the grid. With
    ``values="quantiles"`` (equal steps of probability from 5% to 95%) that estimates the paper's baseline with the
    tails left out (``f = x²`` of a standard normal ``x``: 0.958 for the paper's 1); with ``values`` given, it is the
    unweighted mean over them. The centring shifts a group's whole curve alike: its shape and range
    (``InputEffectAudit``'s ``mean_ace_range``) do not depend on it; :func:`interventional_expectations` gives the
    uncentred ``μ_g(α)``.

    For a linear model ``f(x) = w·x`` this is ``w_g (α − mean α)``. Keyword options are those of
    :func:`interventional_expectations` (``target``, ``max_batch_size``, ``num_values``,
    ``output``, ``additional_forward_args``).

    Args:
        model: any module, as in :func:`input_effects`.
        inputs: a tensor ``[N, ...]`` or a tuple of tensors, as in :func:`input_effects`.
        feature_mask: integer group ids, as in :func:`input_effects`.
        values: the intervention values (at least 2 per group), as in
            :func:`interventional_expectations`.
        **options: keyword options of :func:`interventional_expectations`, as above.

    Returns:
        Tensor ``[G, K]``.

    Examples:
        >>> model = nn.Linear(2, 1, bias=False)
        >>> _ = model.weight.data.copy_(torch.tensor([[2.0, -1.0]]))
        >>> average_causal_effect(model, torch.randn(5, 2), torch.tensor([[0, 1]]), torch.tensor([0.0, 1.0]))
        tensor([[-1.0000,  1.0000],
                [ 0.5000, -0.5000]])
    """
    if isinstance(values, Tensor) and values.dim() in (1, 2) and values.shape[-1] == 1:  # as num_values >= 2 for quantiles
        raise ValueError(
            f"Expected argument `values` to hold at least 2 intervention values per group but got shape {list(values.shape)}: "
            "the curve is centred on its own mean, so one value gives ACE = 0 for every group; "
            "interventional_expectations gives mu_g(alpha) at one value")
    mu, _ = interventional_expectations(model, inputs, feature_mask, values, **options)
    return mu - mu.mean(dim=1, keepdim=True)
