"""Samples linked through a forward argument: the nodes of a graph given with its ``edge_index``.

Every estimator runs intervened rows of the probe's samples in batches of its own choosing
(subsets, repeats, several interventions of one sample), so a sample's output must come from its
own row. A graph neural network called as ``model(x, edge_index)`` on the nodes of one graph,
``x [num_nodes, F]``, has nodes for rows but not for samples: a node's output reads its
neighbours' rows, which ``edge_index`` (or a dense adjacency ``[num_nodes, num_nodes]``) names by
position in the batch. Run on rows of the estimators' choosing, such a model fails on an index
out of range, or, once a pass holds as many rows as the graph has nodes, runs and mixes the rows
silently (every effect wrong). :func:`linked_arguments` names such arguments;
:func:`check_rows_independent` refuses the model before any intervened pass, naming them and the
way that works: a graph is the sample (``docs/recipes.md``, "Graph neural networks").

Examples:
    >>> import torch
    >>> from lightning_causal.causal.engine.forward import ForwardArgs
    >>> edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
    >>> linked_arguments(ForwardArgs((edge_index,), num_samples=3))
    ['the positional forward argument 0 (integer, shape [2, 3], values in [0, 3))']
    >>> linked_arguments(ForwardArgs({"attention_mask": torch.ones(3, 5)}, num_samples=3))
    []
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from lightning_causal._compat import OutOfMemoryError
from lightning_causal.causal.engine.ablation import _PADDING_NAMES, padding_arguments
from lightning_causal.causal.engine.kept_attributes import keep_attributes
from lightning_causal.causal.engine.padded_reads import warn_padded_read
from lightning_causal.causal.engine.pass_errors import STALE_STATE_FIX, ended
from lightning_causal.causal.engine.token_ids import is_integer

if TYPE_CHECKING:
    from lightning_causal.causal.engine.forward import Forward, ForwardArgs

__all__ = ["GRAPH_HINT", "POOLED_GRAPH_HINT", "bag_hint", "check_linked_samples", "check_rows_independent", "linked_arguments", "linked_hint",
           "pass_error_note", "refuse_flat_bags"]

GRAPH_HINT = (
    "If the samples are the nodes of a graph that a forward argument links (a graph neural network's `edge_index` "
    "or adjacency), a node's output reads its neighbours' rows and the nodes cannot be the samples: make the graph "
    "the sample, a model of `x [B, num_nodes, F]` that runs its B copies of the graph together (docs/recipes.md, "
    "'Graph neural networks'), and explain a node's output with `output=`"
)

POOLED_GRAPH_HINT = (
    "If the rows are the nodes of many graphs concatenated (PyG-style `x [num_nodes, F]` with an `edge_index` and a "
    "`batch` vector of graph ids) and the model pools them to one output per graph, the graphs are the samples: pad "
    "them, `x [B, max_nodes, F]`, with the adjacency `[B, max_nodes, max_nodes]` and the node mask `[B, max_nodes]` as "
    "forward arguments, the mask under the name `attention_mask` so that padded nodes are never set nor counted "
    "(docs/recipes.md, 'Graph neural networks', many small graphs: the `PaddedGraphs` wrapper)"
)


def linked_hint(model: torch.nn.Module | None, inputs: tuple[Any, ...]) -> str:
    """The way out for rows that a forward argument links: :data:`GRAPH_HINT`, or, where the first
    input is a 1-D integer tensor and the model holds an ``nn.EmbeddingBag`` (flat ``indices`` with
    ``offsets``: every bag's items in one row each, not one row per sample), the bags padded to ids
    ``[N, K]`` with the bag's ``padding_idx``, which ``nn.EmbeddingBag`` leaves out of its bags.

    Args:
        model: the model called (``None``: the graph hint).
        inputs: its positional inputs.

    Examples:
        >>> bag = torch.nn.EmbeddingBag(10, 4, padding_idx=0)
        >>> linked_hint(bag, (torch.tensor([3, 5, 7]),)).startswith("The input is a 1-D tensor of indices")
        True
        >>> linked_hint(bag, (torch.tensor([[3, 5], [7, 0]]),)) == GRAPH_HINT
        True
    """
    x = inputs[0] if inputs else None
    if model is None or not isinstance(x, Tensor) or x.dim() != 1 or x.is_floating_point() or x.is_complex():
        return GRAPH_HINT
    bags = [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.EmbeddingBag)]
    if not bags:
        return GRAPH_HINT
    name, bag = bags[0]
    return bag_hint(_bag_label(name), bag.padding_idx)


def _bag_label(name: str) -> str:
    """How a message names the ``nn.EmbeddingBag`` at ``name`` (the model itself where ``name`` is empty)."""
    return f"nn.EmbeddingBag {name!r}" if name else "the model (an nn.EmbeddingBag)"


def bag_hint(reader: str = "an nn.EmbeddingBag", padding_idx: int | None = None) -> str:
    """How to give the flat ``indices`` of an ``nn.EmbeddingBag`` called with ``offsets`` one row per
    sample (:func:`linked_hint`; the callback's probe, whose labels have one row per sample, says it too).

    Args:
        reader: the bag, as the message names it.
        padding_idx: the bag's ``padding_idx``; ``None``: 0 in the example.
    """
    pad = 0 if padding_idx is None else padding_idx
    return (
        f"The input is a 1-D tensor of indices that {reader} reads with `offsets`? Then its rows are the items of every "
        "bag, not the samples, and the estimators need one row per sample (they run subsets, repeats and interventions "
        "of samples). Pad each sample's bag into ids [N, K] with the bag's `padding_idx` "
        f"(nn.EmbeddingBag(..., padding_idx={pad}), which leaves that id out of every bag) and call the bag without "
        "`offsets` (`per_sample_weights` padded alike, [N, K], passed as a forward argument, which follows its rows); "
        f"then `baseline={pad}` removes an item from its bag, and `special_tokens=({pad},)` leaves the padding "
        "out of the audits' summaries (docs/your_model.md, 'Token inputs')"
    )


def refuse_flat_bags(forward: Forward, xs: tuple[Tensor, ...], what: str) -> None:
    """Refuse flat ``indices`` of an ``nn.EmbeddingBag`` called with ``offsets`` as many as the bags (a click log of one
    item per user on average), whose rows the shapes cannot tell from samples: each item would be taken for a sample
    and every effect silently read another sample's bag. Only where the model holds an ``nn.EmbeddingBag`` and an input
    is a 1-D integer tensor, a pass of ``xs`` (no gradients) sees each bag's call: one whose input is such an input,
    with ``offsets`` other than one item per bag (``arange``), is refused with :func:`bag_hint`.

    Args:
        forward: the model's :class:`~lightning_causal.causal.engine.forward.Forward`.
        xs: the probe's inputs.
        what: the estimator, as the refusal names it.

    Raises:
        ValueError: such a call, naming the bag, the items and the bags.

    Examples:
        >>> from lightning_causal.causal.engine.forward import Forward
        >>> class Bags(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.bag = torch.nn.EmbeddingBag(10, 2)
        ...     def forward(self, ids, offsets):
        ...         return self.bag(ids, offsets)
        >>> offsets = torch.tensor([0, 2, 2])
        >>> refuse_flat_bags(Forward(Bags(), additional_forward_args=(offsets,), num_samples=3), (torch.tensor([1, 2, 3]),), "input_effects")
        Traceback (most recent call last):
        ...
        ValueError: Expected one row of `inputs` per sample, but nn.EmbeddingBag 'bag' reads the 1-D input [3] ...
    """
    flat = [x for x in xs if isinstance(x, Tensor) and x.dim() == 1 and is_integer(x)]
    model = getattr(forward, "model", None)
    bags = [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.EmbeddingBag)] if flat and model else []
    if not bags:
        return
    found: list[tuple[str, int, int]] = []

    def seen(name: str) -> Any:
        def hook(module: torch.nn.EmbeddingBag, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            ids = args[0] if args else kwargs.get("input")
            offsets = args[1] if len(args) > 1 else kwargs.get("offsets")
            if (not isinstance(ids, Tensor) or not isinstance(offsets, Tensor) or ids.dim() != 1
                    or not any(ids is x or (ids.shape == x.shape and torch.equal(ids, x)) for x in flat)):
                return
            items = ids.shape[0] + int(module.include_last_offset)
            if offsets.shape == (items,) and torch.equal(offsets, torch.arange(items, device=offsets.device)):
                return  # one item per bag: the rows are the samples
            found.append((name, int(ids.shape[0]), int(offsets.numel()) - int(module.include_last_offset)))
        return hook

    handles = [m.register_forward_pre_hook(seen(name), with_kwargs=True) for name, m in bags]
    try:
        with torch.no_grad():
            forward.raw(*xs)
    finally:
        for handle in handles:
            handle.remove()
    if found:
        name, items, count = found[0]
        bag = _bag_label(name)
        raise ValueError(
            f"Expected one row of `inputs` per sample, but {bag} reads the 1-D input "
            f"[{items}] with `offsets` that group its {items} items into {count} bags of other sizes than one: {what} "
            "would take each item for a sample, and each item's effect would be read from another sample's bag, "
            f"silently. {bag_hint(bag, dict(bags)[name].padding_idx)}")


def linked_arguments(args: ForwardArgs, pass_rows: int | None = None, *, model: torch.nn.Module | None = None,
                     num_inputs: int = 1) -> list[str]:
    """The forward arguments that may link the samples (a graph's ``edge_index`` or adjacency).

    - an integer tensor that does not follow its rows (its first dimension is not ``N``) whose
      values lie in ``[0, N)``: indices of samples, e.g. ``edge_index [2, E]``; with ``pass_rows``
      (the rows of a pass that failed), also a ``[2, E]`` one whose largest value is ``pass_rows``
      or more: it indexes rows the pass does not hold (a probe cut to its first samples cuts the
      graph). A tensor of first dimension 1, which broadcasts over the samples (a shared
      ``position_ids [1, T]``), is none, and so is a 1-D ``position_ids``/``cache_position`` keyword
      ``[T]`` (:data:`~.forward_args.SHARED_POSITIONS`);
    - a tensor that follows its rows and is ``N`` long on a later dimension too: a dense
      adjacency ``[N, N]`` (gathered by row, its columns still name the probe's samples), unless it
      is a padding argument (:func:`~.ablation.padding_arguments`: an ``attention_mask`` or
      ``lengths`` keyword, a positional argument bound to that name of ``model.forward`` after
      ``num_inputs`` inputs, or a named tuple's field or a mapping's value so named inside an argument):
      the mask of a probe of 16 sequences of 16 tokens is ``[16, 16]`` too.

    A tensor nested in an argument (a named tuple's field, a list's item, a mapping's value) is looked at too. Each is
    named with its position or keyword (and its place in the argument), dtype kind, shape and (indices) value range.
    """
    n = args.num_samples
    if not n:
        return []
    padding = padding_arguments(model, args.kwargs if args.kwargs else args.args, num_inputs)
    masks = [v for k, v in padding.items() if k in _PADDING_NAMES] if isinstance(padding, Mapping) else []
    found = []
    named = [*(leaf for i, v in enumerate(args.args) for leaf in _named_leaves(f"the positional forward argument {i}", v)),
             *(leaf for k, v in args.kwargs.items() for leaf in _named_leaves(f"the forward argument {k!r}", v))]
    for name, v in named:
        if not isinstance(v, Tensor) or v.dim() == 0 or v.numel() == 0 or v.is_meta:
            continue
        shape = "[" + ", ".join(str(s) for s in v.shape) + "]"
        if args._per_sample(v):
            if n > 1 and n in v.shape[1:] and not any(v is m for m in masks):
                found.append(f"{name} (shape {shape}, {n} long beside its {n} rows: an adjacency?)")
        elif is_integer(v) and v.shape[0] != 1 and not args.is_shared(v):  # a shared position_ids [T] indexes positions, not samples
            # (a first dimension of 1 broadcasts over the samples, as a shared position_ids [1, T]: no indices of them)
            low, high = int(v.min()), int(v.max())
            pairs = v.dim() == 2 and v.shape[0] == 2  # [2, E]: a graph's edges as pairs of rows (COO, PyG's layout)
            counts = _counted_by(v, named, args)
            if counts is not None:  # F.ctc_loss's targets concatenated, their lengths per sample beside them
                found.append(f"{name} (integer, shape {shape}): the labels of every sample concatenated, as many as "
                             f"{counts} sums to, which cannot follow their samples' rows: pad them, [N, S] with "
                             f"{counts} unchanged (F.ctc_loss takes padded targets too), and they travel with their rows")
            elif low >= 0 and (high < n or pairs and pass_rows is not None and high >= pass_rows):
                found.append(f"{name} (integer, shape {shape}, values in [0, {high + 1}))")
    return found



def _counted_by(v: Tensor, named: list[tuple[str, Any]], args: ForwardArgs) -> str | None:
    """The name of a per-sample 1-D integer argument whose values sum to the length of the 1-D integer ``v`` (lengths
    beside the sequences of all samples concatenated: ``F.ctc_loss``'s targets with their ``target_lengths``), or ``None``."""
    if v.dim() != 1:
        return None
    for name, u in named:
        if (isinstance(u, Tensor) and u.dim() == 1 and u is not v and not u.is_floating_point() and u.dtype != torch.bool
                and args._per_sample(u) and int(u.min()) >= 0 and int(u.sum()) == v.numel()):
            return name.removeprefix("the forward argument ").removeprefix("the positional forward argument ")
    return None

def _named_leaves(name: str, value: Any) -> list[tuple[str, Any]]:
    """``(name, value)``, or the tensors nested in ``value`` (a named tuple's fields, a list's items, a mapping's values,
    which travel with their rows as :class:`~.forward_args.ForwardArgs` gathers them) each named by its place in it."""
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        items = [(f"{name}'s field {f!r}", v) for f, v in zip(value._fields, value)]
    elif isinstance(value, (tuple, list)):
        items = [(f"{name}[{i}]", v) for i, v in enumerate(value)]
    elif isinstance(value, Mapping):
        items = [(f"{name}[{k!r}]", v) for k, v in value.items()]
    else:
        return [(name, value)]
    return [leaf for n, v in items for leaf in _named_leaves(n, v)]


def pass_error_note(args: ForwardArgs, pass_rows: int, *, model: torch.nn.Module | None = None,
                    num_inputs: int = 1) -> str | None:
    """What to add to a model's error in a pass of ``pass_rows`` rows when forward arguments may
    link the rows (:func:`linked_arguments`, with ``model`` and ``num_inputs`` as there), else ``None``."""
    linked = linked_arguments(args, pass_rows, model=model, num_inputs=num_inputs)
    if not linked:
        return None
    return (f"This pass ran {pass_rows} row(s) of {args.num_samples} sample(s), and forward arguments may link the rows: "
            f"{'; '.join(linked)}. {GRAPH_HINT}")


BATCH_HINT = (
    "If the model computes something shared from its batch's rows (a prototypical network's class prototypes from "
    "the support rows of an episode, a statistic over the batch), no sample has an output of its own: compute the "
    "shared part once from fixed rows (the prototypes kept as a buffer) and explain the queries, or make the "
    "episode the sample, `[B, K, ...]`"
)


def check_rows_independent(forward: Forward, xs: tuple[Tensor, ...], output: Tensor, what: str, *,
                           one_row: bool = False) -> None:
    """Refuse a model whose samples are not independent rows, before any intervened pass.

    Two probe samples run alone must give their outputs in the batch (``output``, the clean
    pass's selected output): :func:`~.sample_independence.check_samples_independent`, whose refusal
    (``ValueError``) gets the graph hint when a forward argument links the samples
    (:func:`linked_arguments`). An ``output=`` that reads padded positions is warned about first
    (:func:`~.padded_reads.warn_padded_read`). A pass of the two samples alone that fails where the whole batch
    ran (an ``edge_index`` naming rows the pass does not hold) is refused with a ``ValueError`` too,
    naming the model's error (chained) instead of letting it surface from deep inside an estimator;
    out-of-memory errors, and the row-wise error of a callable ``output=``, pass through unchanged. ``one_row``: the
    estimator runs every row alone (``max_batch_size=1``), as in :func:`~.sample_independence.check_samples_independent`.
    """
    from lightning_causal.causal.engine.sample_independence import check_samples_independent

    warn_padded_read(forward, xs, what)
    n = xs[0].shape[0]
    linked = linked_arguments(forward.args, model=forward.model, num_inputs=len(xs))
    named = f"Forward arguments that link the samples: {'; '.join(linked)}. " if linked else ""
    if linked and n > 1:
        _check_reordered(forward, xs, output, what, named)
    try:
        check_samples_independent(forward, xs, output, what, one_row=one_row)
    except OutOfMemoryError:
        raise
    except ValueError as err:
        if not str(err).startswith("Expected the model to treat samples independently") or not linked:
            raise
        raise ValueError(f"{ended(err)} {named}{GRAPH_HINT}") from err
    except (IndexError, RuntimeError) as err:
        from lightning_causal.causal.engine.forward import ROW_WISE_OUTPUT

        if ROW_WISE_OUTPUT in str(err):  # a callable output= that reads a per-sample tensor: its own error says so
            raise
        hinted = STALE_STATE_FIX in str(err)  # stale_state_hint's, whose last clause is the graph's way out (a held `adj`)
        stale = hinted and _names_written_state(forward, xs, str(err))  # no other hint then
        # Forward's note on a pass whose rows a forward argument links names GRAPH_HINT; the hint's graph clause stands
        # in for it (said twice before), the linking arguments still named
        graph = "" if stale or GRAPH_HINT in str(err) else named.rstrip() if hinted else f"{named}{GRAPH_HINT}"
        raise ValueError(
            f"Expected the model to compute each sample's output from that sample's rows alone, but probe samples "
            f"{[0, min(1, n - 1)]} run alone failed where the batch of {n} ran: {what} runs rows of many samples in batches "
            f"of its own choosing (subsets, repeats, interventions). The model's error: {type(err).__name__}: {err}"
            + (f". {graph}" if graph else "") + ("" if linked or stale else f". {BATCH_HINT}")
        ) from err


def _names_written_state(forward: Forward, xs: tuple[Tensor, ...], said: str) -> bool:
    """Whether ``said`` (an error with :func:`~.pass_errors.stale_state_hint`'s hint) names a tensor the forward writes:
    the batch ``xs`` run once more, the model's tensors put back after it, sets or changes it (a recurrent state,
    ``self.h = h.detach()``), as a graph the model holds (``self.adj``, named by the hint for its size) is not."""
    from lightning_causal.causal.engine.sample_independence import _identity, _kept_tensors

    before = {k: _identity(t) for k, t in _kept_tensors(forward.model).items()}
    state = keep_attributes(forward.model, reassigned_buffers=True, values=True, helpers=True)
    try:
        with torch.no_grad():
            forward(*xs)
        now = _kept_tensors(forward.model)
    except Exception:  # noqa: BLE001 - the batch that ran fails once more: nothing told apart
        return False
    finally:
        state.restore()
    # a name whole, as the hint lists them (`h [1, 2, 4]` after ": " or ", "), not the end of another (`x.h [`)
    return any(re.search(rf"(?:^|\s){re.escape(k)} \[", said) for k, t in now.items() if before.get(k) != _identity(t))


@contextlib.contextmanager
def failed_rows_named(forward: Forward, xs: tuple[Tensor, ...], what: str) -> Iterator[None]:
    """Re-raise an ``IndexError`` or ``RuntimeError`` of the passes inside as :func:`check_rows_independent`'s
    ``ValueError`` where that check refuses the model (:func:`name_failed_rows`): an estimator that runs passes of fewer
    rows than the probe (a noise check on its first rows, a split of the forward pass on a trial row) before the check,
    on a model whose forward reads its whole batch (a prototypical network's prototypes from the batch's first rows, a
    ``reshape`` to the batch's size), got the model's own error from deep inside. Running out of memory goes on
    unchanged.

    Examples:
        >>> from lightning_causal.causal.engine.forward import Forward
        >>> class Episode(torch.nn.Module):  # prototypes from the batch's first 3 rows
        ...     def forward(self, x):
        ...         return -torch.cdist(x, x[:3].reshape(3, -1)) ** 2
        >>> forward, x = Forward(Episode()), torch.rand(4, 3)
        >>> with failed_rows_named(forward, (x,), "unit_effects"):
        ...     forward(x[:1], rows=torch.arange(1))
        Traceback (most recent call last):
        ...
        ValueError: Expected the model to compute each sample's output from that sample's rows alone, ...
    """
    try:
        yield
    except OutOfMemoryError:
        raise
    except (IndexError, RuntimeError) as err:
        name_failed_rows(forward, xs, what, err)
        raise


def name_failed_rows(forward: Forward, xs: tuple[Tensor, ...], what: str, err: Exception) -> None:
    """Raise :func:`check_rows_independent`'s ``ValueError``, from ``err`` (a pass's failure, being handled), where that
    check refuses the model; return otherwise, for the caller to re-raise ``err``: where the pass of ``xs`` fails too,
    or the check passes, the error is the model's own. Only a failure costs anything: a pass of ``xs`` and one of two
    samples, without gradients. :func:`failed_rows_named`'s, and Captum's (``CaptumForward.coupled_rows_refused``, which
    takes torch's ``ValueError`` of a pass of one row through a ``BatchNorm1d(track_running_stats=False)`` too).

    Args:
        forward: the model's forward.
        xs: the probe's inputs.
        what: the estimator, as the refusal names it.
        err: the failure.
    """
    try:
        with torch.no_grad():
            output = forward(*xs)
    except Exception:  # noqa: BLE001 - the whole probe fails too: the model's own error, re-raised by the caller
        return
    try:
        check_rows_independent(forward, xs, output, what)
    except ValueError as refusal:
        raise refusal from err


def _check_reordered(forward: Forward, xs: tuple[Tensor, ...], output: Tensor, what: str, named: str) -> None:
    """Refuse, before any pass of fewer rows, a model whose outputs do not follow its samples when
    they run in reverse order (all ``n`` rows, the forward arguments unchanged): an ``edge_index``
    naming rows by position then links other rows. A pass of fewer rows could index rows it does not
    hold, which on a GPU is a device-side assert that ends the process's CUDA use; this pass holds
    every row. A graph that reversing maps onto itself (a path or a ring, undirected: node ``i`` and
    node ``n - 1 - i`` have mirrored neighbourhoods) gives the same outputs reversed, so where the
    reversed order passes, a fixed shuffle of the rows (no random stream drawn) runs too. A model
    that draws random numbers in these passes is not judged here."""
    from lightning_causal.causal.engine.in_batch_scores import place_paired_hint
    from lightning_causal.causal.engine.noise import GeneratorWatch
    from lightning_causal.causal.engine.sample_independence import same_outputs

    n = xs[0].shape[0]
    reverse = torch.arange(n - 1, -1, -1)
    shuffle = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    orders = [("reverse order", reverse)]
    if n > 2 and not bool((shuffle == reverse).all()) and not bool((shuffle == torch.arange(n)).all()):
        orders.append(("a shuffled order", shuffle))
    for how, order in orders:
        order = order.to(xs[0].device)
        with GeneratorWatch() as watch:
            reordered = forward(*(x[order] for x in xs), rows=order)
        diff, same = same_outputs(reordered, output[order])
        if watch.moved:
            return
        if not same:
            raise ValueError(
                f"Expected the model to compute each sample's output from that sample's rows alone, but the probe's {n} "
                f"samples run in {how} gave other outputs than in their own order (max |difference| {diff:.3g}): {what} runs "
                f"rows of many samples in batches of its own choosing (subsets, repeats, interventions). "
                f"{place_paired_hint(forward, xs)}{named}{GRAPH_HINT}")


def check_linked_samples(model: torch.nn.Module, xs: tuple[Tensor, ...], what: str, *, output: Any = None,
                         additional_forward_args: Any = None, independent: bool = False) -> None:
    """:func:`check_rows_independent` for ``model`` called on ``xs`` with these arguments, where
    :func:`linked_arguments` finds one that may link the samples, or ``independent`` asks for it (then one pass of
    ``xs`` and one of two samples, without gradients); otherwise only :func:`~.padded_reads.warn_padded_read`. For
    callers that hold no clean pass of their own (Captum's methods, an audit's set-up: ``independent`` for the audits
    whose dry run on 2 samples cannot see a model that mixes the rows of its batch, :class:`~lightning_causal.audits.Audit`'s
    ``whole_probe_rows_check``)."""
    from lightning_causal.causal.engine.forward import Forward

    forward = Forward(model, output=output, additional_forward_args=additional_forward_args, num_samples=xs[0].shape[0])
    if independent or linked_arguments(forward.args, model=forward.model, num_inputs=len(xs)):
        with torch.no_grad():
            check_rows_independent(forward, xs, forward(*xs), what)
    else:
        warn_padded_read(forward, xs, what)
