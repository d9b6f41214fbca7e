"""The layers' clean activations on the probe for the layer causal map
(:func:`~lightning_causal.causal.structure.layer_map.layer_causal_map`): which modules it reads (those
that run, with the samples on dimension 0, also on a pass of two probe samples; a module that runs
several times per pass at its last call), in forward order (:func:`clean_activations`); the clean pass
of a model that draws noise, block by block from its seeds (:func:`seeded_clean_activations`); padded
positions left out of a layer's output (:func:`real_positions_only`)."""

from __future__ import annotations

import contextlib
import itertools
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.batching import kinded
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.intervention_hooks import (
    FEWER_ROWS_FIX,
    OTHER_ROWS_CAUSE,
    UnreachedSiteWarning,
    fewer_rows,
    fewer_rows_cause,
)
from lightning_causal.causal.engine.interventions import capture, resolve_module
from lightning_causal.causal.engine.noise import CommonNoise
from lightning_causal.causal.engine.quantized import check_not_quantized
from lightning_causal.causal.engine.rounding import rounding_bound, row_scales
from lightning_causal.causal.engine.sample_independence import same_outputs
from lightning_causal.causal.engine.state import output_fix
from lightning_causal.causal.engine.unit_sites import (
    _CONVOLVES,
    _features_last,
    channel_count,
    check_not_vmapped,
    container_hint,
    declared_widths,
    first_tensor,
    folded_hint,
    functional_layer_hint,
    holds_tensors_only,
    lays_channels_first,
)
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.structure.functional_layers import (
    FUNCTIONAL,
    OWN_WEIGHTS,
    FunctionalCalls,
    functional_layer_calls,
    functional_layers_note,
)

__all__ = ["BATCH_FIRST", "BROADCAST", "NOT_SAMPLES_FIRST", "VMAPPED", "activations_alone", "clean_activations", "conv_layouts", "real_positions_only",
           "seeded_clean_activations", "SkippedModulesError", "skipped_modules_error", "steps_layout", "unaligned_positions"]

BATCH_FIRST = ("A layer built with batch_first=False (nn.TransformerEncoderLayer, recurrent layers) returns [T, N, ...] "
                "(build it with batch_first=True), and a module called on some rows only (an expert of a mixture) returns "
                "fewer; a module run on rows of its own that every sample shares (a zero-shot classifier's text tower over "
                "its class prompts, one row a prompt) holds no sample's rows, and no input intervention moves it (its "
                "units' effects on the output: `unit_effects`, `UnitImportanceAudit`): name modules that return every "
                "sample first with `layers=`")


#: why a default layer whose output does not hold one row per sample left the layer map (its ``meta["left_out"]`` entry)
NOT_SAMPLES_FIRST = ("its output does not hold one row per sample: [T, N, ...], an expert of a mixture called on some rows, "
                     "or rows of its own that every sample shares (a zero-shot classifier's class prompts, whose units "
                     "`unit_effects` measures)")

#: a layer whose output has one row for a probe of several samples: nothing of a sample moves it
ONE_ROW = ("one row for all samples: an output computed from no sample and broadcast over the batch (position embeddings "
           "of position_ids [1, T], e.g. ALBERT's or BERT's `embeddings.position_embeddings`), which no input intervention "
           "moves (its units' effects on the output: `unit_effects`), or a module called on one row only (an expert of a "
           "mixture)")

#: its ``meta["left_out"]`` entry
BROADCAST = "its output has " + ONE_ROW

#: a default layer run inside ``torch.func.vmap`` (a named one is refused with
#: :func:`~lightning_causal.causal.engine.unit_sites.check_not_vmapped`'s message); its ``meta["left_out"]`` entry
VMAPPED = ("it runs inside torch.func.vmap, one sample at a time, and a hook cannot tell which sample it sees: name a "
           "module applied to what vmap returns with `layers=`")


def _sequential_hint(forward: Forward, name: str) -> str:
    """For a named ``nn.Sequential`` that did not run: the container's hint (``checkpoint_sequential`` calls its
    children, not it)."""
    module = resolve_module(forward.model, name) if _resolves(forward.model, name) else None
    if not isinstance(module, nn.Sequential) or len(module) == 0:
        return ""
    return " (if its children ran" + container_hint(name, module) + ")"


def clean_activations(forward: Forward, xs: tuple[Tensor, ...], layers: list[str], *, named: bool = True,
                      left_out: dict[str, str] | None = None,
                      calls: dict[str, int] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """The model's output and the layers' activations on the probe, in forward order. ``named``:
    the user named ``layers`` (each must run, with one row per sample); else (the default layers)
    those that do not are left out (``nn.MultiheadAttention.out_proj``: its weight is used, the
    module does not run unless its ``:input`` site is named), silently, and those whose outputs do not
    hold the samples first with a warning and, where ``left_out`` is given, an entry there
    (:data:`NOT_SAMPLES_FIRST`). A kept module that runs several times per pass is read at its last call, with a
    warning and, where ``calls`` is given, an entry there (name -> its calls per pass). A module run inside
    ``torch.func.vmap`` is refused where named (:func:`~lightning_causal.causal.engine.unit_sites.check_not_vmapped`),
    else left out (:data:`VMAPPED`)."""
    vmapped: set[str] = set()

    def keep(name: str, out: Tensor) -> Tensor:  # under vmap a hook sees one sample: no row count, say vmap
        try:
            check_not_vmapped(name, out)
        except ValueError:
            if named:
                raise
            vmapped.add(name)
        return out.clone()

    with warnings.catch_warnings():
        if not named:  # default layers that do not run are left out below, silently
            warnings.simplefilter("ignore", UnreachedSiteWarning)
        with capture(forward.model, layers, keep=keep) as acts:
            with _last_calls(forward.model, [k for k in layers if _resolves(forward.model, k)]) as last:
                out = forward(*xs)
    if not isinstance(out, Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        fix = f"; {output_fix(out)}" if isinstance(out, Tensor) and out.dim() > 2 else ""
        raise ValueError(f"Expected a model returning [N, outputs] but it returned {shape}{fix}")
    n = out.shape[0]
    short = {k: v for k, v in acts.items() if k in layers and v.shape[0] != n and k not in vmapped}
    one_row = {k for k, v in short.items() if _one_row(v, n, last.get(k, (0, 1))[1])}
    folded = {k: f"{list(v.shape)} for {n} samples" + (f": {ONE_ROW}" if k in one_row else _calls_note(*last.get(k, (0, 1, None))[1:], n, v.shape[0]))
              for k, v in short.items()}
    folded |= {k: f"{list(acts[k].shape)}, one sample's: {VMAPPED}" for k in layers if k in vmapped}
    # the default layers: a layer the model computes in functional code outside them (a hypernetwork's main net, a
    # dynamic filter) is in none of them, counted on the pass of two samples (not the clean pass: under a function mode
    # nn.TransformerEncoderLayer leaves its fast path, whose rounding the intervened passes' differences would hold)
    functional: FunctionalCalls | None = None if named else FunctionalCalls()
    folded |= _not_samples_first(forward, xs, {k: v for k, v in acts.items() if k in layers and k not in folded},
                                 functional=functional, covered=layers)
    if functional is not None:  # the layers= the note advises: those the map keeps (not wpe(arange(T)[None]))
        functional.order = [k for k in functional.order if k not in folded]
    if functional is not None and left_out is not None:
        left_out.update({k: BROADCAST if rows == 1 else NOT_SAMPLES_FIRST for k, rows in functional.dropped.items()})
    if functional and (note := functional_layers_note(functional)):
        warnings.warn(note, UserWarning, stacklevel=outside_package())
        if left_out is not None:  # a module of yours that returns the call's output is the layer: its name, named
            own = set(functional.returned.values())
            left_out.update({k: FUNCTIONAL for k in functional if k not in own} | dict.fromkeys(functional.returned, OWN_WEIGHTS))
    across = set(folded) - one_row - vmapped  # the batch laid out otherwise: BATCH_FIRST
    missing = [k for k in layers if k not in acts or k in folded]
    if missing and named:
        why = "; ".join(f"{k!r} returned {folded[k]}" if k in folded else f"{k!r} did not run{_sequential_hint(forward, k)}"
                        for k in missing)
        fold = next((h for k in missing if k in acts and (h := folded_hint(acts[k].shape, n))), "")
        raise ValueError(f"Expected the modules {missing} to run in the forward pass with outputs [N, ...] (N = {n} "
                         f"samples) but {why}." + (f" {BATCH_FIRST}" if across else "") + fold)
    if folded:
        if left_out is not None:
            left_out.update({k: BROADCAST if k in one_row else VMAPPED if k in vmapped else NOT_SAMPLES_FIRST for k in folded})
        shown = "; ".join(f"{k!r} returned {v}" for k, v in list(folded.items())[:6]) + (" ..." if len(folded) > 6 else "")
        # kinded: the text names the pass's samples (2 in the callback's dry run, the probe's in its audits): once a fit
        warnings.warn(kinded(f"The layer map leaves out the modules whose outputs do not hold the samples on dimension 0: "
                             f"{shown}." + (f" {BATCH_FIRST}" if across else ""),
                             f"layers not samples-first: {', '.join(sorted(folded))}"), stacklevel=outside_package())
    # forward order, a module that runs several times at its last call: the one capture keeps
    kept = {k: acts[k] for k in sorted(acts, key=lambda k: last.get(k, (0, 0))[0]) if k in layers and k not in missing}
    for k, h in kept.items():  # a statically quantized layer: torch has no arithmetic on its output
        check_not_quantized(k, h)
    repeated = {k: last[k][1] for k in kept if last.get(k, (0, 1))[1] > 1}
    if repeated:
        if calls is not None:
            calls.update(repeated)
        shown = ", ".join(f"{k!r} runs {c} times" for k, c in list(repeated.items())[:6])
        warnings.warn(f"The layer map reads a module that runs several times per forward pass at its last call and "
                      f"places it there in the chain of layers: {shown} per forward pass (counted on the probe's pass, whose inputs may "
                      "call it another number of times)", UserWarning, stacklevel=outside_package())
    if not kept:  # every default layer folds something into the batch (a graph as the sample: its nodes): say what
        fold = next((h for k in folded if k in acts and (h := folded_hint(acts[k].shape, n))), "")
        shared = [k for k in missing if k in one_row]  # one row for the batch: computed from no sample
        raise ValueError(f"Expected a leaf module with parameters that runs in the forward pass with outputs [N, ...]; name them with "
                         f"`layers=` (none of {missing[:6]} does)" + (f". {BATCH_FIRST}" if across else "")
                         + (f". {sorted(vmapped)[:6]} run inside torch.func.vmap, one sample at a time: name a module applied to "
                            "what vmap returns" if vmapped else "")
                         + (f". {shared[:6]} return {ONE_ROW}: a hypernetwork that makes one set of weights for the batch has no "
                            "hidden layer per sample" if shared else "") + fold
                         # an nn.ParameterList of weights the model reads in functional code: no layer of it runs
                         + (f"; {functional_layer_hint()}" if any(_resolves(forward.model, k) and holds_tensors_only(
                             resolve_module(forward.model, k)) for k in missing) else ""))
    return out, kept


def _one_row(h: Tensor, n: int, calls: int) -> bool:
    """Whether a module's output, ``h``, has one row for a probe of ``n > 1`` samples in its one call: no ``[T, N, ...]``
    layout (``T = 1`` would be no sequence) but an output broadcast over the batch, or a call on one row only."""
    return n > 1 and calls == 1 and h.dim() > 0 and h.shape[0] == 1


def _calls_note(calls: int, first_rows: int | None, n: int, rows: int) -> str:
    """Why a module that runs several times per pass returns other rows than the ``n`` samples (``rows`` at its last
    call, the one read): at every call, or, where its first call returned every sample (``first_rows``), at a later one,
    fewer (on the rows still running) or more (on a stack of its rows, :data:`OTHER_ROWS_CAUSE`)."""
    if calls < 2:
        return ""
    if first_rows == n and fewer_rows(rows, first_rows):
        return f" at the last of its {calls} calls per pass, {fewer_rows_cause(rows, n)}; name {FEWER_ROWS_FIX}"
    if first_rows == n:  # its first call returned every sample, a later one more rows: `self.block(torch.cat([h, -h]))`
        return f" at the last of its {calls} calls per pass, {rows} rows where its first call returned {n}: {OTHER_ROWS_CAUSE}"
    return f" at each of its {calls} calls per pass (a module called per sample or per step in a loop)"


def _resolves(model: nn.Module, name: str) -> bool:
    try:
        resolve_module(model, name)
    except (AttributeError, KeyError, ValueError):
        return False
    return True


@contextlib.contextmanager
def _last_calls(model: nn.Module, names: list[str]) -> Iterator[dict[str, tuple[int, int, int | None]]]:
    """``name -> (index of its last call in the pass, number of calls, rows of its first call's output)``, filled during
    the block (the output's tensor as capture reads it, element 0 of a tuple; the rows ``None`` where there is no
    tensor with a dimension)."""
    seen: dict[str, tuple[int, int, int | None]] = {}
    ticks = itertools.count()

    def hook(name: str):  # noqa: ANN202
        def note(_module: nn.Module, _args: object, out: object) -> None:
            out = first_tensor(out)  # a block returning (state, halting score): the state, as capture reads it
            rows = out.shape[0] if isinstance(out, Tensor) and out.dim() > 0 else None
            _, count, first = seen.get(name, (0, 0, rows))
            seen[name] = (next(ticks), count + 1, first)
        return note

    handles = [resolve_module(model, name).register_forward_hook(hook(name)) for name in names]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def _not_samples_first(forward: Forward, xs: tuple[Tensor, ...], acts: dict[str, Tensor], *,
                       functional: FunctionalCalls | None = None, covered: Sequence[str] = ()) -> dict[str, str]:
    """Layers whose probe output has as many rows as samples by coincidence (``[T, N, ...]`` with
    ``T = N``): on the first two samples alone (one more pass; never one sample alone, as a model that squeezes a
    batch of one would change shapes; for a probe of two, its samples and the first again, three rows, so that neither
    a ``[2, N, ...]`` layer nor a generator of one row, ``gen(self.z)``, holds as many rows as the pass) they do not
    return as many rows. ``functional``: a count that the same pass fills with the layers computed in functional code
    outside ``covered`` (:func:`~lightning_causal.causal.structure.functional_layers.functional_layer_calls`)."""
    n = xs[0].shape[0]
    if not acts or n == 1:
        return {}
    rows = torch.tensor([0, 1] if n > 2 else [0, 1, 0], device=xs[0].device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreachedSiteWarning)
        watch = contextlib.nullcontext(Counter()) if functional is None else functional_layer_calls(forward.model, covered)
        with capture(forward.model, list(acts)) as few, watch as calls:
            forward(*(x[rows] for x in xs), rows=rows)
    r = len(rows)
    if functional is not None:
        functional.update(calls)
        functional.drop_not_of_rows(r)  # a generator of yours run on one row: no layer to advise
    return {k: f"{list(v.shape)} for {n} samples but {list(few[k].shape)} for {r}" for k, v in acts.items()
            if k in few and (few[k].dim() == 0 or few[k].shape[0] != r)}


class SkippedModulesError(ValueError):
    """:func:`skipped_modules_error`'s error, carrying its ``modules`` and ``rows``, so that a caller may refuse in its own
    words (``carrier_unit_effects``' sample run alone, :func:`~lightning_causal.causal.scm.fairness.repeated_carrier_error`)."""

    def __init__(self, message: str, modules: list[str], rows: Tensor) -> None:
        super().__init__(message)
        self.modules, self.rows = modules, rows

    def __reduce__(self) -> tuple:  # pickled and copied with its modules and rows (a required argument each)
        return type(self), (*self.args[:1], self.modules, self.rows), self.__dict__


def skipped_modules_error(modules: list[str], rows: Tensor) -> SkippedModulesError:
    """The error for chosen ``modules`` that ran in the probe's clean pass but not in a later pass over
    samples ``rows`` (a block skipped at random by a model that draws random numbers in eval mode, or
    a branch taken on some inputs only), in place of a bare ``KeyError``."""
    return SkippedModulesError(
        f"Expected the modules {modules} to run in every pass, as in the probe's, but they did not run in a pass of "
        f"{rows.numel()} sample(s) (samples {int(rows.min())}..{int(rows.max())}): a model that draws random numbers "
        "in eval mode skips them at random (stochastic depth that ignores self.training?), or they run on some "
        "inputs only (a branch). Make the forward deterministic in eval mode, or name modules that run in every "
        "pass with `layers=`", modules, rows)


def seeded_clean_activations(forward: Forward, xs: tuple[Tensor, ...], layers: list[str], noise: CommonNoise) -> tuple[Tensor, dict[str, Tensor]]:
    """The output and the ``layers``' activations of the probe, each block of samples run from its
    seed (common random numbers with :func:`~lightning_causal.causal.structure.layer_trace.trace_interventions`'s passes)."""
    return _block_activations(forward, xs, layers, [noise.samples(k, xs[0].device) for k in range(noise.count)], noise.seed)


def activations_alone(forward: Forward, xs: tuple[Tensor, ...], layers: list[str],
                      before: Callable[[int], None] | None = None, calls: Mapping[str, int] | None = None,
                      what: str = "the estimator", whole: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """The output and the ``layers``' activations of the probe, each sample run alone (a pass each): the clean pass of an
    estimator given ``max_batch_size=1``, the stacked-rows refusal's advice, whose intervened rows run alone, so that a
    model branching on its batch's statistic gives each sample's clean values as its intervened rows see them, not the
    whole probe's (the layer map and the causal graph mixed two branches). Run after the probe check, which compares
    samples run together with the whole pass, and after the whole pass, which warned of modules run several times
    (read at their last call here too) or not at all: not warned of again. ``before(k)`` is called before sample
    ``k``'s pass (``carrier_unit_effects`` counts its layer's calls in each).

    ``calls`` (layer -> its calls in the whole probe's pass; a layer not named: once): a sample alone that calls a layer
    another number of times (a branch on a batch statistic repeating a block, or skipping one, on that sample alone:
    the layer map and the causal graph would read its last call, silently) is refused, :func:`alone_calls_error`, in
    ``what``'s words, unless that sample's output alone is its row of ``whole`` (the whole probe's output) to float
    rounding: its rows are independent and only the loop's length follows the batch (an early exit or adaptive
    computation time running a block until every row halts, halted rows kept by ``torch.where``; a ``GRUCell`` over
    ``lengths.max()`` steps, masked), and its last call alone is the one its output comes from. The carriers, which
    count calls their own way (``before``), give none."""
    counts: list[dict[str, tuple[int, int, int | None]]] = []
    out = _block_activations(forward, xs, layers, list(torch.arange(xs[0].shape[0], device=xs[0].device).split(1)),
                             before=before, warn=False, counts=counts if calls is not None else None)
    for row, seen in enumerate(counts):
        for layer in layers:
            if (layer in seen and seen[layer][1] != calls.get(layer, 1)  # type: ignore[union-attr]
                    and not (whole is not None and _as_in_whole(out[0][row], whole[row], forward.model))):
                raise alone_calls_error(layer, seen[layer][1], calls.get(layer, 1), row, what)  # type: ignore[union-attr]
    return out


def _as_in_whole(alone: Tensor, whole: Tensor, model: nn.Module) -> bool:
    """Whether a sample's output run alone is its row of the whole pass to float rounding (:func:`rounding_bound` on the
    row's scale)."""
    diff, same = same_outputs(alone, whole)
    if not same or not (alone.is_floating_point() or alone.is_complex()):
        return same
    return diff / float(row_scales(whole.reshape(1, -1))[0]) <= rounding_bound(whole, model)


def alone_calls_error(layer: str, alone: int, whole: int, row: int, what: str) -> ValueError:
    """The refusal of module ``layer``, which sample ``row`` run alone (``max_batch_size=1``) calls ``alone`` times where
    the whole probe's pass called it ``whole`` times: its calls depend on the batch, and ``what`` would read the sample's
    last call (:func:`activations_alone`).

    Examples:
        >>> print(alone_calls_error("mid", 2, 1, 1, "A layer causal map"))  # doctest: +ELLIPSIS
        Expected module 'mid' to run as often on each sample run alone (max_batch_size=1) as in the probe's pass (1 ...
    """
    return ValueError(
        f"Expected module {layer!r} to run as often on each sample run alone (max_batch_size=1) as in the probe's pass "
        f"({whole} time(s)), but sample {row} alone runs it {alone} time(s): the forward's calls depend on its batch (a "
        f"branch on a batch statistic repeating or skipping a block), and {what} would read that sample's last call "
        f"of it, not the call the other samples' values come from; make the forward per-sample (`torch.where` per row), "
        f"or leave {layer!r} out of `layers=`")


def _block_activations(forward: Forward, xs: tuple[Tensor, ...], layers: list[str], blocks: list[Tensor],
                       before: Callable[[int], None] | None = None, warn: bool = True,
                       counts: list[dict[str, tuple[int, int, int | None]]] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """The output and the ``layers``' activations of the probe run in ``blocks`` of samples (``before(k)`` called before
    block ``k``: its seed), joined; ``warn``: :func:`capture`'s warnings of repeated and unreached modules; ``counts``
    gets each block's :func:`_last_calls` of the layers that name a module."""
    outs, got = [], {a: [] for a in layers}
    named = [a for a in layers if _resolves(forward.model, a)] if counts is not None else []
    for k, s in enumerate(blocks):
        if before is not None:
            before(k)
        with capture(forward.model, layers, warn_repeats=warn, warn_unreached=warn) as acts, \
                _last_calls(forward.model, named) as seen:
            outs.append(forward(*(x[s] for x in xs), rows=s))
        if counts is not None:
            counts.append(dict(seen))
        if missing := [a for a in layers if a not in acts]:  # a block skipped at random (stochastic depth in eval mode)
            raise skipped_modules_error(missing, s)
        for a in layers:
            got[a].append(acts[a])
    return torch.cat(outs), {a: torch.cat(v) for a, v in got.items()}


def real_positions_only(h: Tensor, real: Tensor | None, dim: int = 1) -> Tensor:
    """``h`` with the padded positions of a ``[N, T, ...]`` output set to 0 (``real``: ``[N, T]``
    booleans of the input's real positions); other outputs (pooled ``[N, D]``) as they are. The
    explained output does not read padded positions, so their hidden states (which move when a real
    token does: a padded query still attends to the real keys) are no response: counted, they made
    the map depend on the length the probe is padded to. ``dim``: the dimension of ``h`` that holds the steps, 2 for a
    channels-first output ``[N, C, T, ...]`` (:func:`steps_layout`: a ``Conv1d`` over the steps, whose channels are
    never read as positions, also where ``C == T``).

    Examples:
        >>> import torch
        >>> real = torch.tensor([[True, True, False]])
        >>> real_positions_only(torch.ones(1, 3, 3), real, dim=2)[0, :, 2]  # every channel's step 2: padding
        tensor([0., 0., 0.])
    """
    if real is None or h.dim() < 3:
        return h
    steps = h.movedim(dim, 1)
    if steps.shape[:2] != real.shape:
        return h
    kept = torch.where(real.view(*real.shape, *[1] * (h.dim() - 2)), steps, torch.zeros((), dtype=h.dtype, device=h.device))
    return kept.movedim(1, dim)


#: how many steps more than the input's a layer's output may hold and still be laid against them (a causal
#: ``Conv1d`` padded by ``k - 1`` on both sides, a virtual node or ``[CLS]`` token: :func:`unaligned_positions`)
EXTRA_STEPS = 4


def steps_layout(model: nn.Module, acts: dict[str, Tensor], steps: int | None = None,
                 layouts: Mapping[str, str] | None = None) -> tuple[dict[str, int], list[str]]:
    """Where the steps of each layer of ``acts`` lie, of one reading of each (:func:`_steps_read`), as ``(dims, tied)``:
    ``dims``, the layers whose outputs ``[N, C, T, ...]`` hold their steps on dimension 2, as ``{name: 2}`` (the
    others, ``[N, T, D]``, hold them on dimension 1); ``tied``, the layers read on dimension 1 whose outputs hold the
    input's ``steps`` (``T`` to ``T + EXTRA_STEPS``) on dimensions 1 and 2 alike and whose module says nothing of its
    layout (no declaration, :func:`_declared_layout`; no convolution, channel normalisation or pool; nothing inside
    that tells, :func:`_inner_layout`), unless the pass recorded that its convolution read its input transposed:
    their padding is laid on dimension 1 by default, which the shapes cannot confirm (the layer map warns of them).
    Shape first: given the input's ``steps`` (``T``), the steps lie on the one of dimensions 1 and 2 whose size is ``T`` to ``T + EXTRA_STEPS`` (a causal ``Conv1d``'s or a ``[CLS]``
    token's few more) where the other's is not, whatever the module: a pool or a ``Conv1d`` over a token's features
    (``nn.AvgPool1d`` on ``[N, T, D]``: ``[N, T, D / 2]``) keeps them on dimension 1, a module of one's own returning
    ``conv(x)[..., :T]`` (``[N, C, T]``) has them on dimension 2. Where both sizes fit (``C == T``), or no ``steps`` is
    given, the module breaks the tie: a convolution, a channel normalisation or a pool (a Mamba block's depthwise
    ``Conv1d`` over a sequence's steps) on dimension 2, but not a pointwise ``Conv1d`` that reads as many channels as
    the input's ``steps``: it mixes the positions laid on its channels, ``[N, T, D]`` (a gMLP's spatial gating unit,
    ``nn.Conv1d(T, T, 1)``), so its steps stay on dimension 1; a module of one's own that holds a convolution of as
    many channels as dimension 1 and no features-last layer as wide as the last (:func:`_inner_layout`) by what the pass
    recorded of it (``layouts``, :func:`conv_layouts`): on dimension 2 where its convolution read its input as it is or
    its output is the convolution's (a causal convolution module returning ``self.conv(x)[..., :T]``), on dimension 1
    where it read it transposed (a text-CNN block, ``relu(self.conv(x.transpose(1, 2))).transpose(1, 2)``) or nothing
    was recorded (then warned of: ``tied``); any other module on dimension 1 (those that say nothing of
    their layout: ``tied``, which the layer map warns of where the probe is padded).

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Conv1d(4, 4, 3), nn.Linear(3, 3))
        >>> steps_layout(model, {"0": torch.ones(1, 4, 3), "1": torch.ones(1, 4, 3)})[0]
        {'0': 2}
        >>> steps_layout(nn.Sequential(nn.Conv1d(8, 8, 1)), {"0": torch.ones(1, 8, 6)}, 8)[0]  # 8 positions mixed
        {}
        >>> steps_layout(nn.Sequential(nn.AvgPool1d(2)), {"0": torch.ones(1, 6, 3)}, 6)[0]  # a token's features pooled
        {}
        >>> steps_layout(nn.Sequential(nn.Identity()), {"0": torch.ones(1, 16, 6)}, 6)[0]  # a wrapper's [N, C, T]
        {'0': 2}
        >>> steps_layout(nn.Sequential(nn.ReLU(), nn.Conv1d(6, 6, 3)), {"0": torch.ones(1, 6, 6), "1": torch.ones(1, 6, 4)}, 6)
        ({'1': 2}, ['0'])
    """
    modules = dict(model.named_modules())
    read = {a: _steps_read(modules.get(a), h, steps, (layouts or {}).get(a)) for a, h in acts.items() if h.dim() >= 3}
    return {a: 2 for a, (on2, _) in read.items() if on2}, [a for a, (_, tied) in read.items() if tied]


def _steps_read(module: nn.Module | None, h: Tensor, steps: int | None, read: str | None = None) -> tuple[bool, bool]:
    """Whether ``h``'s steps lie on dimension 2 (:func:`steps_layout`'s ``dims``): by its shape where only one of
    dimensions 1 and 2 fits ``steps``, else by ``module``; and whether that was a tie nothing decided (its ``tied``: read
    on dimension 1 by default)."""
    declared = _declared_layout(module, h)
    if declared == "features":
        return False, False
    if steps is not None and declared is None:
        fit1, fit2 = (steps <= int(s) <= steps + EXTRA_STEPS for s in h.shape[1:3])
        if fit1 != fit2:
            return fit2, False
        if fit1 and module is None:
            return False, True
        if fit1 and not lays_channels_first(module, h):
            inner = _inner_layout(module, h)
            if inner == "channels":  # a causal convolution module of one's own, [N, C, T] with C == T (or a few more)
                return read == "channels", read is None
            return False, inner is None and read != "steps"
    return module is not None and lays_channels_first(module, h) and not _mixes_positions(module, steps), False


def _inner_layout(module: nn.Module, h: Tensor) -> str | None:
    """What the layers a module of one's own holds say of its output ``h``, where the sizes alone (dimensions 1 and 2
    both within ``T`` to ``T + EXTRA_STEPS``) do not: ``"channels"`` where it holds a convolution or channel
    normalisation of as many channels as ``h``'s dimension 1 and no layer that gives its features last (a ``Linear``, an
    embedding, a layer normalisation, attention, a recurrent layer) as wide as ``h``'s last dimension or of a width it
    does not declare (a causal convolution of one's own returning ``self.conv(x)[..., :T]``); ``"features"`` where it
    holds such a layer as wide as the last dimension and no such convolution; else ``None`` (nothing inside: an
    activation named in ``layers=``; or both)."""
    inner = [declared_widths(m) for m in module.modules() if m is not module]
    convolves = int(h.shape[1]) in [d["channels"] for d in inner if "channels" in d]
    widths = [d["features"] for d in inner if "features" in d]
    last = int(h.shape[-1]) in widths
    if convolves and not last and None not in widths:
        return "channels"
    return "features" if last and not convolves else None


@contextlib.contextmanager
def conv_layouts(model: nn.Module, layers: Sequence[str]) -> Iterator[dict[str, str]]:
    """Record, during the pass run inside, how each module of ``layers`` that holds a convolution or channel
    normalisation (not pointwise ``Conv1d`` layers alone; beside another, a pointwise one tells too) and reads a
    tensor ``[N, A, B]`` lays out its output, as ``{name:
    "channels" | "steps"}`` (the last call's; a name left out where nothing tells, or its convolutions disagree).
    ``"channels"``: its output is a view of a convolution's output with the same strides (``self.conv(x)[..., :T]``),
    or, where it is none and has its input's shape, a convolution read its input as it is (the same storage and strides, or the same values at
    an offset of its last dimension: ``F.pad(x, (k - 1, 0))``); ``"steps"``: the output is a convolution's output
    transposed, or a convolution read the input transposed (a text-CNN block, ``relu(self.conv(x.transpose(1,
    2))).transpose(1, 2)``) or the output of a features-last layer of the input's shape transposed (a Conformer's
    convolution module, ``self.conv(self.norm(x).transpose(1, 2))``, torchaudio's too, whose pointwise
    ``Conv1d(d, 2d, 1)`` reads it before a GLU and the depthwise convolution), where that layer read the input as it is
    (one that read it transposed, or such a layer's output, is a channels-first block's norm over its channels,
    ``self.norm(x.transpose(1, 2)).transpose(1, 2)`` of ``[N, C, T]``: no sign of steps on dimension 1). No pass of its own, no copy: hooks compare strides (and values where the storage differs)
    at each call, and are removed on exit, also on an exception.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> class Block(nn.Module):  # [N, T, D] in and out, the conv over the steps
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.conv = nn.Conv1d(4, 4, 3, padding=1)
        ...     def forward(self, x):
        ...         return self.conv(x.transpose(1, 2)).relu().transpose(1, 2)
        >>> model = nn.Sequential(Block())
        >>> with conv_layouts(model, ["0"]) as read:
        ...     _ = model(torch.randn(2, 4, 4))
        >>> read
        {'0': 'steps'}
    """
    modules = dict(model.named_modules())
    read: dict[str, str] = {}
    handles = []
    try:
        for name in layers:
            module = modules.get(name)
            inner = [] if module is None or isinstance(module, _CONVOLVES) else \
                [m for m in module.modules() if isinstance(m, _CONVOLVES)]
            # a block of pointwise convolutions only is hooked no more than before; beside one over the steps, a pointwise
            # one tells too (torchaudio's Conformer module: its Conv1d(d, 2d, 1) reads norm(x).transpose(1, 2))
            if any(getattr(m, "kernel_size", (2,)) != (1,) for m in inner):
                handles += _layout_hooks(name, module, inner, read)
        yield read
    finally:
        for handle in handles:
            handle.remove()


def _layout_hooks(name: str, module: nn.Module, inner: list[nn.Module], read: dict[str, str]) -> list:
    """The hooks of :func:`conv_layouts` on one layer ``module`` and the convolutions ``inner`` it holds."""
    call: dict[str, object] = {}

    def enter(_m: nn.Module, args: tuple, kwargs: dict) -> None:  # block(h) or block(x=h)
        x = next((a for a in (*args[:1], *kwargs.values()) if isinstance(a, Tensor)), None)
        call.update(x=x if x is not None and x.dim() == 3 else None, said=[], outs=[], last=[], flipped=[])

    def features_ran(m: nn.Module, args: tuple, out: object) -> None:  # a LayerNorm, a Linear: its features last
        x = call.get("x")
        if isinstance(x, Tensor) and isinstance(out, Tensor) and out.shape == x.shape and _declared_layout(m, out) == "features":
            seen = args[0] if args and isinstance(args[0], Tensor) else None
            # one that read the input transposed (or such an output) is a channels-first block's norm over its channels
            # (ln(x.transpose(1, 2)) of [N, C, T]): its features last are the input's channels, no sign of steps on 1
            flipped = seen is not None and (_read_as(seen, x) == "steps" or any(_read_as(seen, f) == "channels" for f in call["flipped"]))
            call["flipped" if flipped else "last"].append(out)

    def conv_ran(_m: nn.Module, args: tuple, out: object) -> None:
        x = call.get("x")
        if not isinstance(x, Tensor) or not args or not isinstance(args[0], Tensor):
            return
        said = _read_as(args[0], x)
        if said is None and any(_read_as(args[0], f) == "steps" for f in call["last"]):  # norm(x).transpose(1, 2):
            said = "steps"  # a features-last output read transposed (a Conformer's convolution module), its steps on 1
        call["said"].append(said)
        if isinstance(out, Tensor) and out.dim() == 3:
            call["outs"].append(out)

    def leave(_m: nn.Module, _args: tuple, out: object) -> None:
        x, read_as = call.get("x"), None
        if isinstance(x, Tensor) and isinstance(out, Tensor) and out.dim() == 3:  # its output a convolution's, else its input's shape
            said = {_view_of(out, o) for o in call["outs"]} - {None} or \
                {r for r in call["said"] if r == "channels" and out.shape[2] == x.shape[2]  # the steps kept in place
                 or r == "steps" and out.shape[1] == x.shape[1]}
            read_as = said.pop() if len(said) == 1 else None
        if read_as is None:
            read.pop(name, None)
        else:
            read[name] = read_as
        call.clear()

    leaves = [m for m in module.modules() if m is not module and not isinstance(m, _CONVOLVES) and not next(m.children(), None)]
    return [module.register_forward_pre_hook(enter, with_kwargs=True), module.register_forward_hook(leave)] + \
        [m.register_forward_hook(conv_ran) for m in inner] + [m.register_forward_hook(features_ran) for m in leaves]


def _view_of(out: Tensor, conv_out: Tensor) -> str | None:
    """``"channels"`` where ``out`` is a view of ``conv_out`` with its strides, ``"steps"`` with dimensions 1 and 2
    swapped, else ``None``."""
    with contextlib.suppress(RuntimeError, NotImplementedError):
        if out.untyped_storage().data_ptr() == conv_out.untyped_storage().data_ptr():
            s, c = out.stride()[1:3], conv_out.stride()[1:3]
            return "channels" if s == c else "steps" if s == c[::-1] else None
    return None


def _read_as(seen: Tensor, x: Tensor) -> str | None:
    """How a convolution read the input ``seen`` against its module's input ``x`` (``[N, A, B]``): ``"channels"`` as it
    is, ``"steps"`` transposed (by storage and strides, else by values at an offset of the last dimension: padded), else
    ``None`` (both or neither: a symmetric input, another tensor)."""
    if seen.dim() != 3 or seen.shape[0] != x.shape[0]:
        return None
    found = {_view_of(seen, x)} - {None}
    if not found:
        with torch.no_grad(), contextlib.suppress(RuntimeError, TypeError):
            for how, y in (("channels", x), ("steps", x.transpose(1, 2))):
                extra = seen.shape[2] - y.shape[2]
                if seen.shape[1] == y.shape[1] and 0 <= extra and any(
                        torch.equal(seen[..., off:off + y.shape[2]], y)
                        for off in (range(extra + 1) if extra <= 2 * EXTRA_STEPS else (0, extra // 2, extra))):
                    found.add(how)
    return found.pop() if len(found) == 1 else None


def _declared_layout(module: nn.Module | None, h: Tensor) -> str | None:
    """What ``module`` says of its output ``h``'s layout, before any shape: ``"features"`` where it gives its features
    last (``unit_sites._features_last``: a ``Linear``, an ``Embedding``, a layer normalisation of the last dimension: a
    learned prefix of tokens ``[N, T + 6, D]`` or a ``Linear`` after a strided
    convolution ``[N, T / 2, D]`` whose ``D`` happens to be the input's ``T`` keeps its steps on dimension 1),
    ``"channels"`` where dimension 1 is the channel count it declares (a convolution's ``out_channels``, a channel
    normalisation's ``num_features``: the module's type then decides, as where sizes tie), else ``None``."""
    if module is None or h.dim() < 3:
        return None
    if _features_last(module, h):  # unit_sites' rule: a linear layer, an embedding, a norm of the last dimension
        return "features"
    channels = channel_count(module)  # any module that declares one (a block of one's own too)
    return "channels" if channels is not None and int(h.shape[1]) == channels else None


def _mixes_positions(module: nn.Module, steps: int | None) -> bool:
    """A pointwise ``Conv1d`` of as many input channels as the input's ``steps``: positions laid on its channels."""
    return (steps is not None and isinstance(module, nn.Conv1d) and module.in_channels == steps
            and module.kernel_size == (1,))


def unaligned_positions(acts: dict[str, Tensor], real: Tensor | None, dims: dict[str, int] | None = None) -> list[str]:
    """The layers whose outputs ``[N, T + k, ...]`` hold a few positions more than the input's ``T`` (``k`` from 1 to
    :data:`EXTRA_STEPS`: a virtual node or a ``[CLS]`` token prepended inside forward) beside padding (``real``:
    ``[N, T]``, some ``False``): where the extra positions lie is not known, so :func:`real_positions_only` keeps their padded positions.
    Not a layer whose output is 0 at every padded position under some offset of the input's positions (``k`` before
    them to none): a model that zeroes its padded nodes' hidden states leaves nothing there to count. ``dims``: the
layers whose steps lie on another dimension (:func:`steps_layout`: ``[N, C, T + k]``, a ``Conv1d`` padded by ``k`` on both
sides, whose last steps a causal model cuts off).

    Examples:
        >>> import torch
        >>> real = torch.tensor([[True, False], [True, True]])
        >>> unaligned_positions({"a": torch.ones(2, 3, 4), "b": torch.ones(2, 2, 4), "c": torch.ones(2, 4)}, real)
        ['a']
        >>> unaligned_positions({"zeroed": torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]).unsqueeze(-1)}, real)
        []
    """
    if real is None or bool(real.all()):
        return []
    n, t = real.shape
    steps = {a: h.movedim((dims or {}).get(a, 1), 1) for a, h in acts.items() if h.dim() >= 3}
    return [a for a, h in steps.items() if h.shape[0] == n and t < h.shape[1] <= t + EXTRA_STEPS
            and all(bool(h[:, off:off + t][~real.to(h.device)].any()) for off in range(h.shape[1] - t + 1))]
