"""Run the tail of a sequence model at the positions its output reads, not at every position.

A sequence classifier reads its last layer at a few positions (BERT's pooler: position 0; a
decoder's score head: the last token) yet computes every layer at all ``T`` positions. Once no
module mixes positions any more (after the last attention has combined its values), the rest of
the model works position by position, so it can run on the read positions alone and give the same
output. A suffix row of a unit intervention pays for the whole tail, so this saves most of the
last layer in every row: about one sixth of a 4-layer BERT's forward pass.

:func:`find_read_slices` finds such modules on a few probe samples, by three checks for each module
called after the cut (its first positional input ``[R, T, ...]``, positions along dimension 1):

1. **gradient**: the positions ``P`` at which the output's gradient (for a random cotangent) is
   nonzero in some feature; a module is a candidate when ``P`` is the same for every sample and
   leaves some position out;
2. **noise**: large random values written at the other positions leave the output unchanged (a
   position that counts only through a max or a ReLU that happens to be off on these samples fails
   here);
3. **slicing**: the model run with the module's sequence-shaped arguments (every tensor argument
   ``[R, T, ...]``) cut to ``P`` gives the same output (code after it that assumes the full length,
   e.g. a reshape, fails here).

Candidates are taken in call order, each checked with the ones already chosen, and a module inside
a chosen one is not considered. Last, the positions must not follow the intervened values: with the
cut's output moved by noise of its own scale, the chosen modules' outputs must still be read at
their positions only (a head that reads where some hidden value peaks, through a one-hot sum that
passes the checks above, would read elsewhere in an intervened row): else nothing is cut. Positions may differ between samples (a decoder's last token under
right padding) when every check row reads the same number of them. The prefix cache then checks
the choice on every probe sample during the probe run it makes anyway (:class:`ProbeCheck`: the
gradient at each chosen module, autograd on from there only; a sample reading a position outside
a shared choice drops the cut), fills in each sample's positions, and cuts the modules' arguments
by forward pre-hooks in every suffix run (:meth:`ReadSlices.applied`) after a trial pass against the
unsliced model. The full-forward fallback, the reference, is never cut.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> class Reader(nn.Module):  # mixes positions, then a position-wise tail read at position 0
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.mix, self.tail, self.head = nn.Linear(4, 4), nn.Linear(3, 3), nn.Linear(3, 2)
    ...     def forward(self, x):  # x: [N, T=4, 3]
    ...         mixed = self.mix(x.transpose(1, 2)).transpose(1, 2)
    ...         return self.head(self.tail(mixed)[:, 0])
    >>> from lightning_causal.causal.engine.forward import Forward
    >>> model, x = Reader(), torch.randn(5, 4, 3)
    >>> reads = find_read_slices(Forward(model), (x,), model.mix)
    >>> reads.describe()
    ["'tail' at positions [0] of 4"]
    >>> with torch.no_grad(), reads.applied():
    ...     sliced = model(x)
    >>> torch.allclose(sliced, model(x))
    True
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.hook_split import Stub
from lightning_causal.causal.engine.interventions import module_output, replace_output
from lightning_causal.causal.engine.live_values import close
from lightning_causal.causal.engine.live_values import moved as moved_value

__all__ = ["ProbeCheck", "ReadSlice", "ReadSlices", "find_read_slices", "probe_rows"]

MAX_ROWS = 8


@dataclass(frozen=True)
class ReadSlice:
    """One module whose sequence-shaped arguments are cut to ``positions`` along dimension 1 (of
    length ``length``): ``[k]``, the same for every sample, or ``[N, k]``, per probe sample.

    Args:
        name: the module's name.
        module: the module whose sequence-shaped arguments are cut.
        length: the full length of dimension 1.
        positions: the kept positions, ``[k]`` or ``[N, k]``, as above.
    """

    name: str
    module: nn.Module
    length: int
    positions: Tensor

    def index(self, rows: Tensor | None) -> Tensor:
        """The positions of each of the batch's rows (``rows``: their probe samples): ``[k]`` or ``[R, k]``.

        Args:
            rows: ``[R]`` the probe sample of each row, or ``None`` (the shared positions, or all
                samples').
        """
        return self.positions if self.positions.dim() == 1 or rows is None else self.positions[rows.to(self.positions.device)]


def _take(value: Tensor, index: Tensor) -> Tensor:
    if index.dim() == 1:
        return value.index_select(1, index.to(value.device))
    index = index.to(value.device).view(*index.shape, *([1] * (value.dim() - 2)))
    return value.gather(1, index.expand(-1, -1, *value.shape[2:]))


def _cut(length: int, index: Tensor) -> Callable[..., tuple[tuple[Any, ...], dict[str, Any]]]:
    def cut(value: Any) -> Any:
        if not (isinstance(value, Tensor) and value.dim() >= 3 and value.shape[1] == length) or isinstance(value, Stub):
            return value  # a stub (a cached output nothing reads) stays unread
        if index.dim() == 2 and value.shape[0] != index.shape[0]:
            return value  # not one row per sample: left whole (the checks judge the result)
        return _take(value, index)

    def hook(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return tuple(cut(a) for a in args), {k: cut(v) for k, v in kwargs.items()}

    return hook


@contextlib.contextmanager
def _pre_hooks(hooks: list[tuple[nn.Module, Callable[..., Any]]]) -> Iterator[None]:
    handles = []
    try:
        for module, hook in hooks:
            handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


class ReadSlices:
    """The modules a suffix runs at the read positions only (see the module's docstring).

    ``slices``: positions shared by every sample (``[k]``) or found for every probe sample
    (``[N, k]``); ``pending`` (from :func:`find_read_slices`): read positions that differ between
    samples (a decoder's last token under right padding), known on the check rows ``rows`` only
    until :class:`ProbeCheck` finds them for every sample.

    Args:
        slices: the checked slices, as above.
        pending: slices whose positions are known on ``rows`` only, as above; ``None``: none.
        rows: ``[r]`` the probe samples ``pending`` was found on.
    """

    def __init__(self, slices: list[ReadSlice], pending: list[ReadSlice] | None = None, rows: Tensor | None = None) -> None:
        self.slices, self.pending = slices, pending or []
        self.rows = rows  # the probe samples the pending positions were found on

    def __bool__(self) -> bool:
        return bool(self.slices)

    @contextlib.contextmanager
    def applied(self, rows: Tensor | None = None) -> Iterator[None]:
        """Cut the modules' sequence arguments while the context is open (hooks removed on exit);
        ``rows``: the probe sample of each row of the batch (needed by per-sample positions).

        Args:
            rows: as above; ``None`` where every slice is shared.
        """
        with _pre_hooks([(s.module, _cut(s.length, s.index(rows))) for s in self.slices]):
            yield

    def describe(self) -> list[str]:
        """One line per module in use: its name and the positions it runs at."""
        return [f"{s.name!r} at positions {s.positions.tolist()} of {s.length}" if s.positions.dim() == 1 else
                f"{s.name!r} at {s.positions.shape[1]} of {s.length} positions per sample (where its output reads)"
                for s in self.slices]


def _read_mask(grad: Tensor) -> Tensor:
    """``[R, T]``: the positions whose gradient is nonzero in some feature."""
    return grad.abs().flatten(2).amax(2) > 0


def _reads_outside(read: Tensor, positions: Tensor) -> bool:
    """Whether ``read`` ``[R, T]`` holds a position outside ``positions`` (``[k]`` shared or ``[R, k]``)."""
    allowed = torch.zeros_like(read)
    if positions.dim() == 1:
        allowed[:, positions.to(read.device)] = True
    else:
        allowed.scatter_(1, positions.to(read.device), True)
    return bool((read & ~allowed).any())


def _add_leaf(leaves: dict[int, Tensor], module: nn.Module, args: tuple[Any, ...], min_dim: int = 0) -> tuple[Any, ...] | None:
    """``args`` with a zero leaf (requires grad) added to the first, recorded in ``leaves`` (the
    module's first call only; a first argument that is not floating point is left alone)."""
    first = args[0] if args else None
    if id(module) in leaves or not (isinstance(first, Tensor) and first.is_floating_point() and first.dim() >= min_dim):
        return None
    leaves[id(module)] = torch.zeros_like(first, requires_grad=True)
    return (first + leaves[id(module)], *args[1:])


def _gradients(out: Tensor, leaves: list[Tensor], generator: torch.Generator) -> tuple[Tensor | None, ...]:
    """The gradients of ``out`` (a random cotangent, so that no gradient cancels) at ``leaves``."""
    cotangent = torch.randn(out.shape, generator=generator, dtype=out.dtype).to(out.device)
    return torch.autograd.grad(out, leaves, cotangent, allow_unused=True)


def probe_rows(n: int, device: torch.device) -> Tensor:
    """Up to :data:`MAX_ROWS` probe samples spread over the probe (first and last included).

    Args:
        n: the number of probe samples.
        device: the device of the indices.
    """
    return torch.linspace(0, n - 1, min(n, MAX_ROWS), device=device).round().long().unique()


def _read_positions(forward: Forward, xs: tuple[Tensor, ...], rows: Tensor, cut: nn.Module
                    ) -> tuple[list[nn.Module], dict[int, tuple[int, Tensor]], Tensor | None, dict[int, Tensor]]:
    """One forward and backward pass of the rows twice over: as they are, then with the cut's
    output moved by noise of its own scale (autograd on from the cut's first call on only).

    Returns the modules whose every call starts after the cut's last call ended and that are called
    once, in call order; for those whose first input is ``[R, T, ...]`` floating point, ``(T, P)``
    with ``P`` the positions at which the clean rows' output gradient is nonzero, when ``P`` is the
    same for every row and leaves some position out; the model's output on the clean rows
    (``None`` when autograd cannot run here); and each such module's read mask ``[R, T]`` on the
    moved rows (what :func:`_reads_ignore_cut` judges)."""
    k = rows.numel()
    events: list[tuple[bool, nn.Module]] = []
    leaves: dict[int, Tensor] = {}
    generator = torch.Generator().manual_seed(0)

    def pre(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        events.append((True, module))
        return _add_leaf(leaves, module, args, min_dim=3) if torch.is_grad_enabled() else None

    def moved(_module: nn.Module, _args: tuple[Any, ...], out: Any) -> Any:
        torch.set_grad_enabled(True)  # from the cut on (the prefix ran without autograd)
        h = module_output(out)
        if h.shape[0] != 2 * k:
            return None
        half = h[k:].detach()
        if not h.is_floating_point():  # ids or codes: other values the layer produced (noise is no id)
            return replace_output(out, torch.cat([h[:k], moved_value(half, h)]))
        noise = torch.randn(half.shape, generator=generator, dtype=h.dtype).to(h.device)
        scale = float(half.std()) if half.numel() > 1 else 1.0
        return replace_output(out, torch.cat([h[:k], h[k:] + scale * noise]))

    handles = []
    for module in {id(m): m for m in forward.model.modules()}.values():
        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(lambda m, _a, _o: events.append((False, m))))
    handles.append(cut.register_forward_hook(moved))  # after the event hook: the cut's end is recorded first
    previous = torch.is_grad_enabled()
    both = torch.cat([rows, rows])
    try:
        torch.set_grad_enabled(False)
        out = forward(*(x[both] for x in xs), rows=both)
        ends = [i for i, (start, m) in enumerate(events) if not start and m is cut]
        calls: dict[int, list[int]] = {}
        for i, (start, m) in enumerate(events):
            if start:
                calls.setdefault(id(m), []).append(i)
        after = [m for i, (start, m) in enumerate(events) if start and ends and i > ends[-1] and len(calls[id(m)]) == 1]
        wanted = [m for m in after if id(m) in leaves]
        if not wanted or not (out.is_floating_point() and out.requires_grad and out.shape[0] == 2 * k):
            return after, {}, out[:k].detach() if out.shape[:1] == (2 * k,) else None, {}
        grads = _gradients(out, [leaves[id(m)] for m in wanted], torch.Generator().manual_seed(0))
    except RuntimeError:  # no autograd here (a caller's inference_mode, a non-differentiable model): run it all
        return [], {}, None, {}
    finally:
        torch.set_grad_enabled(previous)
        for handle in handles:
            handle.remove()
    found, moved_reads = {}, {}
    for module, grad in zip(wanted, grads):
        positions = None if grad is None else _positions(grad[:k])
        if positions is not None:
            found[id(module)] = (grad.shape[1], positions)
            moved_reads[id(module)] = _read_mask(grad[k:])
    return after, found, out[:k].detach(), moved_reads


def _positions(grad: Tensor) -> Tensor | None:
    """The positions with a nonzero gradient: ``[k]`` when the same for every row, ``[R, k]`` when
    every row has ``k`` of them; ``None`` when the counts differ, or ``k`` is 0 or ``T``."""
    read = _read_mask(grad)
    counts = read.sum(1)
    if not bool((counts == counts[0]).all()) or not 0 < int(counts[0]) < read.shape[1]:
        return None
    if bool((read == read[:1]).all()):
        return read[0].nonzero().flatten()
    return read.nonzero()[:, 1].view(read.shape[0], -1)  # row-major: each row's positions in order


def _noise(length: int, index: Tensor, generator: torch.Generator) -> Callable[..., tuple[tuple[Any, ...], dict[str, Any]]]:
    def hook(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        first = args[0]
        other = torch.ones(first.shape[0], length, dtype=torch.bool)
        other[torch.arange(first.shape[0])[:, None], index.cpu().view(-1 if index.dim() == 2 else 1, index.shape[-1])] = False
        other = other.to(first.device)
        scale = 10.0 * (1.0 + float(first.detach().abs().max()))
        noisy = first.clone()
        noise = torch.randn(noisy[other].shape, generator=generator, dtype=first.dtype)
        noisy[other] = scale * noise.to(first.device)
        return (noisy, *args[1:]), kwargs

    return hook


def _same_output(forward: Forward, xs: tuple[Tensor, ...], rows: Tensor, clean: Tensor,
                 hooks: list[tuple[nn.Module, Callable[..., Any]]]) -> bool:
    try:
        with torch.no_grad(), _pre_hooks(hooks):
            return close(forward(*(x[rows] for x in xs), rows=rows), clean)
    except Exception:  # noqa: BLE001 -- code after the module that assumes the full length: not sliceable
        return False


def _full_length(candidates: list[ReadSlice]) -> Callable[[ReadSlice], Callable[..., None]]:
    """Pre-hooks that record which candidates receive their full-length sequence (``seen``)."""
    seen: set[int] = set()

    def watch(c: ReadSlice) -> Callable[..., None]:
        def hook(_module: nn.Module, args: tuple[Any, ...], _kwargs: dict[str, Any]) -> None:
            if args and isinstance(args[0], Tensor) and args[0].dim() >= 3 and args[0].shape[1] == c.length:
                seen.add(id(c.module))
        return hook

    watch.seen = seen  # type: ignore[attr-defined]
    return watch


def _reads_ignore_cut(chosen: list[ReadSlice], moved_reads: dict[int, Tensor]) -> bool:
    """Whether the chosen modules' outputs are still read at their positions only (or fewer) when
    the cut's output is moved by noise of its own scale (``moved_reads``, from :func:`_read_positions`):
    the positions an intervened row reads must not depend on the values the intervention changes (a
    head that picks the position where some hidden value peaks would read elsewhere, and a cut at
    the clean positions answer wrongly)."""
    return not any(_reads_outside(moved_reads[id(c.module)], c.positions) for c in chosen)


def find_read_slices(forward: Forward, xs: tuple[Tensor, ...], cut: nn.Module) -> ReadSlices:
    """The modules after ``cut`` that can run at the positions the output reads (module docstring).

    The checks cost one forward and backward pass of up to :data:`MAX_ROWS` probe samples twice
    over (the second copy with the cut's output moved; autograd from the cut on), and two forward
    passes of them per module tried: a module whose input is already short because of a chosen one
    is not tried.

    Args:
        forward: the prepared model call (its ``select`` picks the explained output).
        xs: the probe inputs ``[N, ...]``; the checks run on up to :data:`MAX_ROWS` of its samples.
        cut: the module the suffix starts after (only modules called after its last call qualify).

    Returns:
        :class:`ReadSlices`, empty (falsy) when no module qualifies.
    """
    rows = probe_rows(xs[0].shape[0], xs[0].device)
    after, found, clean, moved_reads = _read_positions(forward, xs, rows, cut)
    if not found or clean is None:
        return ReadSlices([])
    names = {id(m): name for name, m in forward.model.named_modules()}
    candidates = [ReadSlice(names[id(m)], m, *found[id(m)]) for m in after if id(m) in found and id(m) in names]
    chosen: list[ReadSlice] = []
    full = {id(c.module) for c in candidates}  # the candidates that receive the full length with `chosen` cut
    generator = torch.Generator().manual_seed(0)
    for candidate in candidates:
        if id(candidate.module) not in full or any(candidate.name.startswith(c.name + ".") for c in chosen):
            continue
        trial = [*chosen, candidate]
        watch = _full_length(candidates)
        cuts = [(s.module, _cut(s.length, s.positions)) for s in trial]
        watches = [(c.module, watch(c)) for c in candidates]
        if not _same_output(forward, xs, rows, clean, cuts + watches):
            continue
        if not _same_output(forward, xs, rows, clean, [(candidate.module, _noise(candidate.length, candidate.positions, generator))]):
            continue
        chosen, full = trial, watch.seen  # type: ignore[attr-defined]
    if chosen and not _reads_ignore_cut(chosen, moved_reads):
        return ReadSlices([])
    return ReadSlices([c for c in chosen if c.positions.dim() == 1], [c for c in chosen if c.positions.dim() == 2], rows)


class ProbeCheck:
    """Checks tentative read slices on every probe sample, during a run of the whole probe that
    happens anyway (the prefix cache's probe run): :meth:`context` adds a zero leaf to each module's
    first input and switches autograd on from the first of them (the rest of the model runs without
    it); :meth:`finish` takes the run's explained output and returns the slices that hold for every
    sample (all of them or none: they were checked together), per-sample positions filled in.

    A shared slice holds when no sample reads a position outside it; a per-sample slice when every
    sample reads the check rows' number of positions, and the check rows theirs.

    Args:
        reads: the tentative slices (checked and pending) to check.
    """

    def __init__(self, reads: ReadSlices) -> None:
        self.reads, self.leaves = reads, {}
        self.modules = [s.module for s in (*reads.slices, *reads.pending)]

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """Open around the probe run (autograd restored and hooks removed on exit)."""

        def pre(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
            torch.set_grad_enabled(True)  # from the first chosen module on (the prefix ran without autograd)
            return _add_leaf(self.leaves, module, args)

        previous = torch.is_grad_enabled()
        handles = [] if torch.is_inference_mode_enabled() else [m.register_forward_pre_hook(pre) for m in self.modules]
        try:
            yield
        finally:
            torch.set_grad_enabled(previous)
            for handle in handles:
                handle.remove()

    def finish(self, output: Tensor) -> ReadSlices:
        """The slices that hold on every probe sample, given the probe run's explained ``output``.

        Args:
            output: the explained output of the probe run (carrying autograd from the cut modules).
        """
        if not self.modules or len(self.leaves) != len(self.modules) or not output.requires_grad:
            return ReadSlices([])
        try:
            grads = _gradients(output, [self.leaves[id(m)] for m in self.modules], torch.Generator().manual_seed(1))
        except RuntimeError:
            return ReadSlices([])
        finally:
            self.leaves = {}
        held = []
        for s, grad in zip((*self.reads.slices, *self.reads.pending), grads):
            read = torch.zeros(1, s.length, dtype=torch.bool) if grad is None else _read_mask(grad)
            if s.positions.dim() == 1:  # shared: nothing read outside it
                if _reads_outside(read, s.positions):
                    return ReadSlices([])
                held.append(s)
                continue
            k = s.positions.shape[1]
            if grad is None or not bool((read.sum(1) == k).all()):
                return ReadSlices([])
            positions = read.nonzero()[:, 1].view(read.shape[0], k)
            if not torch.equal(positions[self.reads.rows.to(positions.device)], s.positions.to(positions.device)):
                return ReadSlices([])
            held.append(ReadSlice(s.name, s.module, s.length, positions))
        return ReadSlices(held)
