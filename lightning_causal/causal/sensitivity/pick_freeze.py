"""The pick-freeze machinery behind Sobol' indices and ICC: scrambled Sobol' points, chunked
evaluation of the mixed matrices, the Saltelli (2010) / Jansen (1999) estimators and their
vectorised bootstrap (Archer, Saltelli & Sobol' 1997)."""

from __future__ import annotations

import contextlib
import functools
import statistics
import warnings
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

from lightning_causal.causal.engine.batching import map_rows, remembered_fit
from lightning_causal.causal.engine.checks import check_seed
from lightning_causal.causal.engine.noise import (
    CommonNoise,
    GeneratorWatch,
    noise_warned,
)
from lightning_causal.causal.engine.pass_errors import is_dtype_error
from lightning_causal.causal.engine.sample_independence import (
    check_samples_independent,
    refuse_traced_training,
    same_outputs,
)
from lightning_causal.causal.engine.stacked_rows import StackedRowsError, rows_alone_checked
from lightning_causal.causal.engine.state import audit_mode, rng_preserved
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = [
    "ConstantOutputWarning",
    "scrambled_sobol",
    "user_func",
    "evaluate_pick_freeze",
    "check_func_noise",
    "check_func_independent",
    "evaluate_checked",
    "refuse_traced_func",
    "model_kept",
    "bootstrap_counts",
    "pick_freeze_indices",
    "normal_ci",
    "check_outputs",
    "is_constant",
    "make_generator",
]



class ConstantOutputWarning(UserWarning):
    """The warning that ``func`` is constant on the drawn sample, so every Sobol' index is set to 0
    (:func:`is_constant`). Its own category, so that a caller that says it in its own words (``SobolAudit``)
    filters it by what it is, not by its wording; a ``UserWarning``, so filters of those catch it too."""

def scrambled_sobol(n: int, dim: int, generator: torch.Generator) -> Tensor:
    """``n`` Sobol' points in ``(0, 1)^dim`` (float64) with a left linear matrix scramble and a
    digital shift (Matoušek 1998; the LMS+shift of SciPy's ``qmc.Sobol``), drawn from ``generator``.

    The unscrambled points of :class:`torch.quasirandom.SobolEngine` (30 bits, Joe & Kuo direction
    numbers) are mapped digit-wise: ``y = M x XOR s`` with ``M`` a random lower-triangular binary
    matrix with unit diagonal (bit ``p`` of ``x`` flips bit ``p`` and random lower bits of ``y``)
    and ``s`` a random shift; points are the centres of their ``2^-30`` cells. (``SobolEngine``'s own
    ``scramble=True`` gave 2-10x larger errors of first-order indices than SciPy's scrambling
    in our benchmarks, so it is not used.)
    """
    bits = 30
    x = (torch.quasirandom.SobolEngine(dim, scramble=False).draw(n, dtype=torch.float64) * 2**bits).long()
    p = torch.arange(bits)
    low_bits = torch.randint(0, 2**bits, (dim, bits), generator=generator) & ((1 << p) - 1)
    columns = (1 << p) | low_bits  # [dim, bits]: the image of bit p under M
    y = torch.randint(0, 2**bits, (dim,), generator=generator).expand(n, dim).clone()  # the shift
    for b in range(bits):  # a loop over digits, not samples
        y ^= torch.where((x >> b) & 1 == 1, columns[:, b], 0)
    return (y.double() + 0.5) / 2**bits


def user_func(func: Callable[[Tensor], Tensor], rows: str) -> Callable[[Tensor], Tensor]:
    """``func`` (a function of the user's, not an ``nn.Module`` nor a
    :class:`~lightning_causal.causal.sensitivity.samplers.ClassProbability`, which cast the rows themselves)
    with a dtype error of its model said in full: torch's ``mat1 and mat2 must have the same dtype, but got
    Double and Float`` names neither ``func`` nor the rows it was given. ``rows`` says what they are.

    Examples:
        >>> f = user_func(lambda x: torch.nn.Linear(2, 1)(x)[:, 0], "float64 rows")
        >>> f(torch.zeros(3, 2, dtype=torch.float64))
        Traceback (most recent call last):
        ...
        RuntimeError: `func` failed on rows of dtype torch.float64 (...): they are float64 rows; ...
    """
    from lightning_causal.causal.sensitivity.samplers import ClassProbability

    if isinstance(func, (torch.nn.Module, ClassProbability)):
        return func

    @functools.wraps(func)
    def call(x: Tensor) -> Tensor:
        try:
            return func(x)
        except RuntimeError as err:
            if not is_dtype_error(err):
                raise
            other = torch.float64 if x.dtype == torch.float32 else torch.float32  # the likely model dtype, for the example
            raise type(err)(
                f"`func` failed on rows of dtype {x.dtype} ({err}): they are {rows}; cast them to the model's dtype inside "
                f"`func` (for a {other} model `lambda x: model(x.to({other}))[:, 1]`), or pass the nn.Module itself or "
                "`class_probability(model, t)`, which cast them") from err

    return call


def _call(func: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    out = func(x)
    if not isinstance(out, Tensor):
        raise TypeError(f"Expected `func` to return a tensor but got {type(out)}")
    if out.dim() == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.shape != (x.shape[0],):
        raise ValueError(
            f"Expected `func` to return one value per row, shape [{x.shape[0]}] or [{x.shape[0]}, 1], "
            f"but got {list(out.shape)}"
        )
    return out.detach().to("cpu", torch.float64)


def evaluate_pick_freeze(
    func: Callable[[Tensor], Tensor],
    a: Tensor,
    b: Tensor,
    select: Tensor,
    *,
    rows: int,
    transform: Callable[[Tensor], Tensor] | None = None,
    noise: CommonNoise | None = None,
) -> Tensor:
    """``func(transform(row))`` on every row of every mixed matrix: block ``k`` takes column ``j``
    from ``b`` where ``select[k, j]`` and from ``a`` elsewhere. Returns ``[K, n]`` (float64, CPU).

    The ``K n`` rows are enumerated lazily and evaluated in chunks of ``rows`` rows by the row
    engine (:func:`~lightning_causal.causal.engine.batching.map_rows`), so memory stays at one
    chunk of inputs whatever ``K`` and the rows are shared out under a distributed strategy.

    ``noise`` (a ``func`` that draws noise, :func:`check_func_noise`): common random numbers, each
    block in passes of the same rows from the same seeds; row ``i`` of ``A`` and of every mixed
    block draws one noise, ``B`` (every column from ``b``) draws its own stream.
    """
    k_blocks, n = select.shape[0], a.shape[0]
    select = select.to(a.device)

    def evaluate(idx: Tensor) -> Tensor:
        k, i = idx // n, idx % n
        x = torch.where(select[k], b[i], a[i])
        return _call(func, transform(x) if transform is not None else x)

    with torch.no_grad():
        if noise is not None:
            streams = select.all(1).long().tolist()  # B alone: its own noise
            return noise.rows(k_blocks, lambda k, i: evaluate(k * n + i), a.device, streams=streams).view(k_blocks, n)
        return map_rows(k_blocks * n, rows, evaluate, a.device).view(k_blocks, n)


def check_func_noise(func: Callable[[Tensor], Tensor], a: Tensor, rows: int,
                     transform: Callable[[Tensor], Tensor] | None = None, devices: list[int] | None = None) -> CommonNoise | None:
    """A :class:`~lightning_causal.causal.engine.noise.CommonNoise` over the ``n`` rows of ``a`` in
    blocks of ``rows``, with a ``UserWarning``, when ``func`` gives two answers for
    the first rows of ``a`` (it draws noise); ``None`` otherwise. Call it where the RNG is restored."""
    def forward(x: Tensor, rows: Tensor) -> Tensor:
        return _call(func, transform(x) if transform is not None else x)

    try:
        with torch.no_grad():
            scale = noise_warned(forward, (a,))
    except (TypeError, ValueError, RuntimeError):  # a bad func or sampler: the evaluation of all rows says so, with their count
        return None
    if not scale:
        return None
    return CommonNoise(a.shape[0], rows, devices if devices is not None else [])



def _func_model(func: Callable[[Tensor], Tensor], model: torch.nn.Module | None) -> torch.nn.Module | None:
    """The model ``func`` runs: ``model`` where given, else ``func``'s own ``model`` (a
    :class:`~lightning_causal.causal.sensitivity.samplers.ClassProbability`'s, ``SobolAudit``'s), else ``None`` (a
    function of the user's)."""
    model = model if model is not None else getattr(func, "model", None)
    return model if isinstance(model, torch.nn.Module) else None


@contextlib.contextmanager
def model_kept(func: Callable[[Tensor], Tensor], model: torch.nn.Module | None,
               devices: list[int] | None = None) -> Iterator[None]:
    """The block of an analysis' passes, as every estimator runs its passes: in
    :func:`~lightning_causal.causal.engine.state.audit_mode` of the model ``func`` runs (``model``, else ``func``'s own
    ``model``, a :class:`~lightning_causal.causal.sensitivity.samplers.ClassProbability`'s), which puts back after it the
    generators the model holds (``self.gen = torch.Generator()``, drawn from in ``forward``; the noise checks see their
    draws inside), its attributes (a call counter) and the global generators; for a function of the user's (no model to
    read), the global generators of the CUDA ``devices`` and the CPU
    (:func:`~lightning_causal.causal.engine.state.rng_preserved`). In both, a pass that runs the device out of memory is
    remembered for the passes after it (:func:`~lightning_causal.causal.engine.batching.remembered_fit`).

    Args:
        func: the scalar function of the analysis.
        model: the model ``func`` runs, or ``None``.
        devices: the CUDA devices whose generators are saved for a function of the user's.

    Examples:
        >>> class Noisy(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.gen = torch.Generator().manual_seed(0)
        ...     def forward(self, x):
        ...         return x + torch.rand(x.shape, generator=self.gen)
        >>> model = Noisy()
        >>> with model_kept(model, model):
        ...     first = model(torch.zeros(1))
        >>> torch.equal(first, model(torch.zeros(1)))  # the model's generator was put back
        True
    """
    found = _func_model(func, model)
    with audit_mode(found) if found is not None else rng_preserved(devices), remembered_fit():
        yield


def refuse_traced_func(func: Callable[[Tensor], Tensor], model: torch.nn.Module | None, what: str) -> None:
    """Refuse, before the evaluation, the model ``func`` runs (``model``, else ``func``'s own ``model``, a
    :class:`~lightning_causal.causal.sensitivity.samplers.ClassProbability`'s) where a BatchNorm of it was traced in
    training mode: :func:`~lightning_causal.causal.engine.sample_independence.refuse_traced_training` (its graph
    normalises by the batch in every mode, also of one row per call); a function of the user's passes.

    Args:
        func: the scalar function of the analysis.
        model: the model ``func`` runs, or ``None``.
        what: the analysis, as the refusal names it.

    Examples:
        >>> refuse_traced_func(lambda x: x[:, 0], None, "sobol_indices")
    """
    found = _func_model(func, model)
    if found is not None:
        refuse_traced_training(found, what)


class _RowsCall:
    """``func`` on the rows (through ``transform``) as :func:`check_samples_independent` calls a
    :class:`~lightning_causal.causal.engine.forward.Forward`: ``call(x, rows=...)``, with the ``model`` it reads."""

    def __init__(self, func: Callable[[Tensor], Tensor], transform: Callable[[Tensor], Tensor] | None,
                 model: torch.nn.Module | None) -> None:
        self.func, self.transform = func, transform
        found = _func_model(func, model)
        self.model = found if found is not None else torch.nn.Module()  # a function of the user's: no layer to name

    def __call__(self, x: Tensor, rows: Tensor | None = None) -> Tensor:
        return _call(self.func, self.transform(x) if self.transform is not None else x)


def check_func_independent(func: Callable[[Tensor], Tensor], a: Tensor, y_a: Tensor, rows: int,
                           transform: Callable[[Tensor], Tensor] | None, model: torch.nn.Module | None, what: str,
                           devices: list[int] | None = None) -> None:
    """Refuse a ``func`` whose value for a row depended on the other rows of its call, as every estimator refuses such a
    model (:func:`~lightning_causal.causal.engine.sample_independence.check_samples_independent`, ``ValueError``): the
    analysis ran the drawn rows in chunks of ``rows``, so the indices of a model that normalises by the batch
    (``x - x.mean(0)``) would mix whichever rows shared a chunk, silently. Called after :func:`evaluate_pick_freeze`
    with ``y_a``, ``func``'s values of ``a``'s rows as it ran them: two of them run alone must agree (2 rows more; a
    ``func`` that draws noise passes; nothing where each row ran alone, ``rows`` 1), and so must :data:`SPREAD_ROWS`
    rows spread over the first chunk, each run alone (:func:`_check_rows_alone`: a branch on a batch statistic; 16 passes
    of 2 rows more). A BatchNorm traced in training mode is refused before the evaluation (:func:`refuse_traced_func`).
    The evaluation's chunks (of the mixed matrices and ``B`` too) are checked as they run, by
    :func:`~lightning_causal.causal.engine.stacked_rows.rows_alone_checked` (each chunk's first and last rows alone);
    :func:`evaluate_checked` runs both, this one's words first.
    Its passes run in :func:`model_kept`, as the analysis' own: the global RNG is left as it was, and so are the generators
    the model holds (``self.gen = torch.Generator()``), whose draws the check sees as noise.

    Args:
        func: the scalar function of the analysis, as :func:`evaluate_pick_freeze` calls it.
        a: the drawn matrix ``A`` ``[n, D]``.
        y_a: ``func``'s values of ``a``'s rows in the evaluation ``[n]`` (its first block).
        rows: the rows per call of the evaluation.
        transform: what maps the drawn rows to ``func``'s inputs (an inverse CDF, an SCM's ``generate``), or ``None``.
        model: the model ``func`` runs, named in the refusal; ``None``: ``func``'s own ``model``, if any.
        what: the analysis, as the refusal names it.
        devices: the CUDA devices whose generators are saved (:func:`~lightning_causal.causal.engine.state.rng_preserved`).

    Examples:
        >>> a = torch.linspace(0, 1, 16, dtype=torch.float64).reshape(8, 2)
        >>> check_func_independent(lambda x: x[:, 0], a, a[:, 0], 4, None, None, "sobol_indices")  # per row: passes
        >>> centred = lambda x: x[:, 0] - x[:, 0].mean()
        >>> check_func_independent(centred, a, torch.cat([centred(a[:4]), centred(a[4:])]), 4, None, None, "sobol_indices")
        Traceback (most recent call last):
        ...
        ValueError: Expected the model to treat samples independently, ...
    """
    m = min(rows, a.shape[0])
    if m < 2:
        return  # every row ran alone
    call = _RowsCall(func, transform, model)
    with model_kept(func, model, devices), torch.no_grad():  # as the analysis' passes: its own generators seen, put back
        check_samples_independent(call, (a[:m],), y_a[:m], what)  # type: ignore[arg-type]
        _check_rows_alone(call, a[:m], y_a[:m], rows, what)


def evaluate_checked(func: Callable[[Tensor], Tensor], a: Tensor, b: Tensor, select: Tensor, *, rows: int,
                     transform: Callable[[Tensor], Tensor] | None, noise: CommonNoise | None,
                     model: torch.nn.Module | None, what: str, devices: list[int] | None = None) -> Tensor:
    """:func:`evaluate_pick_freeze` with the analysis' two checks that ``func`` treats its rows independently: each
    chunk's first and last rows run alone as it runs
    (:func:`~lightning_causal.causal.engine.stacked_rows.rows_alone_checked`), then ``A``'s drawn rows
    (:func:`check_func_independent`). The drawn rows' check words the cause it sees more exactly (a forward that
    normalises by the batch, a branch on a batch statistic among the drawn rows, with the rows per pass), so where the
    stacked-rows check refuses a chunk, ``func``'s values of the first chunk of ``A`` (its first ``rows`` rows, in one
    call, as the evaluation ran them) go through it first, and the stacked-rows refusal follows only where it passes.
    Call it where the model's state is kept (:func:`model_kept`). Returns :func:`evaluate_pick_freeze`'s ``[K, n]``.

    Args:
        func: the scalar function of the analysis.
        a: the drawn matrix ``A`` ``[n, D]``.
        b: the drawn matrix ``B`` ``[n, D]``.
        select: ``[K, D]`` booleans, as in :func:`evaluate_pick_freeze`.
        rows: the rows per call of the evaluation.
        transform: what maps the drawn rows to ``func``'s inputs, or ``None``.
        noise: the common random numbers of a ``func`` that draws noise (:func:`check_func_noise`), or ``None``.
        model: the model ``func`` runs, or ``None``.
        what: the analysis, as the refusals name it.
        devices: the CUDA devices whose generators are saved.

    Examples:
        >>> a, b = torch.zeros(4, 2, dtype=torch.float64), torch.ones(4, 2, dtype=torch.float64)
        >>> select = torch.tensor([[False, False], [True, False]])
        >>> evaluate_checked(lambda x: x[:, 0] + 2 * x[:, 1], a, b, select, rows=8, transform=None, noise=None, model=None,
        ...                  what="sobol_indices")
        tensor([[0., 0., 0., 0.],
                [1., 1., 1., 1.]], dtype=torch.float64)
        >>> evaluate_checked(lambda x: x[:, 0] - x[:, 0].mean(), a + torch.arange(4.0).view(4, 1), b, select, rows=8,
        ...                  transform=None, noise=None, model=None, what="sobol_indices")
        Traceback (most recent call last):
        ...
        ValueError: Expected the model to treat samples independently, ...
    """
    try:
        with rows_alone_checked(what, model=model):
            y = evaluate_pick_freeze(func, a, b, select, rows=rows, transform=transform, noise=noise)
    except StackedRowsError:
        m = min(rows, a.shape[0])
        with torch.no_grad():
            first = _call(func, transform(a[:m]) if transform is not None else a[:m])
        check_func_independent(func, a, first, rows, transform, model, what, devices)  # its words, where it sees the cause
        raise
    check_func_independent(func, a, y[0], rows, transform, model, what, devices)  # A's rows as they ran
    return y


SPREAD_ROWS = 16
"""How many rows of the first chunk :func:`_check_rows_alone` runs alone, spread over it."""


def _check_rows_alone(call: _RowsCall, a: Tensor, y_a: Tensor, rows: int, what: str) -> None:
    """Refuse ``func`` where one of :data:`SPREAD_ROWS` rows spread over its first chunk ``a`` ``[m, D]``, run alone,
    does not give its value in the chunk, ``y_a`` (the evaluation's passes held up to ``rows`` rows: ``A``'s and, where
    ``A`` has fewer, the mixed blocks' that follow). A branch on a batch statistic (an early exit when the batch's mean
    confidence passes a threshold) gives every row of a chunk the branch of the chunk's mean, and rows 0 and 1 of
    :func:`check_samples_independent` often take it alone too (a digits MLP: a fifth of the drawn rows took another
    branch alone, 1 pair in 10 of them). Each row runs as a pass of two copies of itself (its own statistics; a batch
    of one would change the shapes of a model that squeezes it); a ``func`` that draws noise is not judged, as there,
    also where no watch sees its draws: a function of the user's around a model drawing from a generator it holds
    (``lambda x: model(x.float())``, ``self.gen`` unknown to the analysis), whose two passes of the spread rows differ
    (:func:`_unseen_noise`, run only before a refusal)."""
    m = a.shape[0]
    spread = torch.linspace(2, m - 1, min(SPREAD_ROWS, max(m - 2, 0))).round().long().unique().tolist()
    for i in spread:
        twice = a[[i, i]]
        with GeneratorWatch() as watch:
            alone = call(twice)
        if watch.moved:
            return  # the model draws random numbers: not the batch's doing
        diff, same = same_outputs(alone, y_a[[i, i]])
        if not same and same_outputs(call(twice), alone)[1]:
            if _unseen_noise(call, a[spread]):
                return  # noise from a generator no watch sees: not the batch's doing
            raise ValueError(
                f"Expected the model to treat samples independently, but drawn row {i} run alone gives another value "
                f"than in the analysis' pass that held it (passes of at most {rows} rows; max |difference| {diff:.3g}): its "
                "forward depends on the batch (control flow on a batch statistic, e.g. `if p.mean() > t: return early`, or "
                "normalisation over the batch). "
                f"{what} runs rows of many samples in one batch, which would mix their branches silently; make the "
                "forward per-sample (e.g. `torch.where` per row) or pass one sample at a time")


def _unseen_noise(call: _RowsCall, rows: Tensor) -> bool:
    """Whether two passes of the same ``rows`` differ: noise drawn from a generator that neither the global watch nor the
    registered model generators see (a function of the user's around a model holding ``self.gen``). A coin per row
    repeats in a pass of 16 rows with probability 2^-16; a model whose value depends on the batch gives the same values
    twice."""
    return not same_outputs(call(rows), call(rows))[1]


def bootstrap_counts(n: int, n_bootstrap: int, generator: torch.Generator) -> Tensor:
    """Multinomial counts ``[R, n]``: row ``r`` counts how often each row is drawn in resample ``r``."""
    idx = torch.randint(0, n, (n_bootstrap, n), generator=generator)
    return torch.zeros(n_bootstrap, n, dtype=torch.float64).scatter_add_(1, idx, torch.ones(idx.shape, dtype=torch.float64))


def pick_freeze_indices(
    y_a: Tensor, y_b: Tensor, closed: Tensor, total: Tensor, *, counts: Tensor | None
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, float]:
    """Closed first-order indices of the blocks ``closed`` ``[K1, n]`` (Saltelli 2010) and total
    indices of the blocks ``total`` ``[K2, n]`` (Jansen 1999), centred outputs expected.

    Returns ``(first [K1], total [K2], first_boot [R, K1], total_boot [R, K2], variance)``; the
    bootstrap replicates are weighted means with the multinomial ``counts`` (``None``: skipped).
    """
    terms = torch.cat(
        [
            (y_a.square() + y_b.square()).unsqueeze(1),
            (y_a + y_b).unsqueeze(1),
            (y_b * (closed - y_a)).T,
            0.5 * (y_a - total).square().T,
        ],
        dim=1,
    )  # [n, 2 + K1 + K2]
    k1 = closed.shape[0]

    def split(moments: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        var = moments[..., 0] / 2 - (moments[..., 1] / 2).square()
        var = var.unsqueeze(-1)
        return moments[..., 2 : 2 + k1] / var, moments[..., 2 + k1 :] / var, var

    first, tot, var = split(terms.mean(0))
    if counts is None:
        return first, tot, None, None, float(var)
    first_boot, total_boot, _ = split(counts @ terms / terms.shape[0])
    return first, tot, first_boot, total_boot, float(var)


def normal_ci(estimate: Tensor, boot: Tensor | None, confidence: float) -> Tensor:
    """``estimate ± z · sd(boot)`` as ``[K, 2]`` (SALib's convention); NaN without replicates."""
    if boot is None or boot.shape[0] < 2:
        return torch.full((estimate.numel(), 2), float("nan"), dtype=torch.float64)
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
    half = z * boot.std(dim=0, unbiased=True)
    return torch.stack([estimate - half, estimate + half], dim=1)


def check_outputs(y: Tensor, labels: Sequence[str]) -> float:
    """Raise on non-finite outputs (naming the blocks hit), return the range of the outputs."""
    bad = ~torch.isfinite(y)
    if bad.any():
        blocks = [labels[k] for k in torch.nonzero(bad.any(1)).flatten().tolist()[:5]]
        raise ValueError(
            f"Expected `func` to return finite values but {int(bad.sum())} of {y.numel()} evaluations are NaN or "
            f"infinite (blocks {blocks}); Sobol' indices need a finite output variance"
        )
    return float(y.max() - y.min())


def is_constant(y: Tensor, labels: Sequence[str]) -> bool:
    """Check the outputs are finite; warn and return True if they are constant (indices undefined):
    their range is within round-off of their magnitude (relative, as the indices are scale-invariant:
    a rare class's probability of 1e-11 that varies by 1% is not constant). The warning's category is
    :class:`ConstantOutputWarning`."""
    if check_outputs(y, labels) <= 1e-12 * float(y.abs().max()):
        warnings.warn("`func` is constant on the sample; all indices are set to 0", ConstantOutputWarning, stacklevel=outside_package())
        return True
    return False


def make_generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    """``generator`` if given, else a fresh CPU generator seeded with ``seed`` (never the global RNG)."""
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"Expected argument `generator` to be a torch.Generator but got {type(generator)}")
        return generator
    return torch.Generator().manual_seed(check_seed(seed, type_error=TypeError))
