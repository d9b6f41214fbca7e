"""Models whose forward pass draws random numbers in eval mode: detection and common random numbers.

A model may sample in every forward pass, eval mode included: Monte Carlo dropout kept on
(``F.dropout(h, p, training=True)``), a variational encoder's latent ``z = mu + sigma * eps``,
stochastic depth or noise layers that ignore ``self.training``. The effect
``f_t(x) - f_t(x | do(.))`` then compares two passes that draw their own noise: most of it is the
difference of two noise draws, and which draws a row gets depends on its place in a chunk
(``max_batch_size``) and on the path taken.

The estimators that run interventions row by row (:func:`~..effects.input_effects.input_effects`,
:func:`~..effects.input_effects.interventional_expectations`,
:func:`~..effects.unit_effects.unit_effects`) detect such a model (:func:`noise_scale`: two passes
of the same samples differ, run only for a model seen drawing from a global generator, in a pass of
its own of 8 samples or in the estimator's clean pass, :class:`GeneratorWatch`) and use **common random numbers** (:class:`CommonNoise`): the samples
run in consecutive blocks ``[a, b)``; the block's clean pass and each of its intervened passes
start from one seed, so sample ``i`` draws the same noise in the clean and in every intervened
pass. The effect is then that of the intervention at fixed noise, for one draw of the noise per
sample: a feature the model ignores gets exactly 0, at any ``max_batch_size`` (a block's clean and
intervened passes run the same rows; a deterministic model's intervened rows run in passes of other
sizes than its clean pass, which leaves rounding there), and the ACE curve, centred on its mean, 0 to
that mean's rounding. The seeds come from the global generator
as the caller left it (its state is restored afterwards): the same state gives the same numbers,
another state another draw. A ``UserWarning`` (:func:`warn_noise`) says so. So do
:func:`~..sensitivity.sobol.sobol_indices` and
:func:`~..sensitivity.icc.intrinsic_causal_contributions` (row ``i`` of ``A`` and of every matrix
mixing ``A`` with ``B`` draws one noise, ``B`` its own), and
:func:`~..scm.fairness.counterfactual_fairness_gap` and :func:`~..backdoor.triggers.trigger_effect`
(a sample and its counterfactual or triggered copy draw one noise), the layer map
(:func:`~..structure.layer_map.layer_causal_map`: a sample's clean and intervened activations), and
the baselines' deletion and insertion curves (every point of a sample's curve draws one noise).

The estimators that compare passes in ways that do not line up with blocks of samples (the causal
graph's path interventions and faithfulness, the counterfactual search, the carrier
units of a fairness counterfactual, Neural Cleanse's trigger search, Captum's attributions) warn instead that their figures hold differences of noise draws
(:func:`warn_separate_noise`).
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.batching import map_rows
from lightning_causal.causal.engine.generators import active_generators
from lightning_causal.causal.engine.state import model_devices
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["RANDOM_MODEL", "SEPARATE_DRAWS", "CommonNoise", "GeneratorWatch", "common_noise", "draws_random_numbers", "generator_states", "noise_scale", "noise_warned", "warn_noise",
           "warn_separate_noise", "NOISE_SAMPLES"]

#: Samples of the probe run twice to detect a model that draws noise (two clean passes): noise drawn
#: once per sample (a block skipped with p = 0.1) leaves 8 samples unchanged in a third of the pairs.
NOISE_SAMPLES = 32


#: Samples of the one pass that looks for a draw from the global generators (:func:`draws_random_numbers`).
DRAW_SAMPLES = 8


def generator_states() -> tuple[object, ...]:
    """The global generators' states: torch's CPU and initialised CUDA ones, NumPy's and ``random``'s;
    inside :func:`~.state.audit_mode`, also those of the generators the model holds
    (:func:`~.generators.active_generators`)."""
    states: list[object] = [torch.default_generator.get_state()]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states += [g.get_state() for g in torch.cuda.default_generators]
    kind, keys, pos, *_ = np.random.get_state()
    states.append((kind, keys.tobytes(), pos))
    states.append(random.getstate())
    states += [g.get_state() for g in active_generators()]
    return tuple(s.numpy().tobytes() if isinstance(s, Tensor) else s for s in states)


class GeneratorWatch:
    """``with GeneratorWatch() as watch:`` around a pass the estimator runs anyway (its clean pass):
    ``watch.moved`` says whether a global generator (:func:`generator_states`) moved inside, so a
    model that draws nothing there costs no detection pass (``drew=watch.moved`` for
    :func:`noise_scale`, :func:`common_noise`, :func:`warn_separate_noise`).

    Examples:
        >>> layer = nn.Linear(2, 2)  # its initialisation draws; its forward does not
        >>> with GeneratorWatch() as watch:
        ...     _ = layer(torch.ones(1, 2))
        >>> watch.moved
        False
    """

    moved: bool | None = None

    def __enter__(self) -> GeneratorWatch:
        self._before = generator_states()
        return self

    def __exit__(self, *exc: object) -> None:
        self.moved = generator_states() != self._before


def draws_random_numbers(forward: Callable[..., Tensor], xs: tuple[Tensor, ...], samples: int = DRAW_SAMPLES) -> bool:
    """Whether one pass of the first ``samples`` samples (``forward`` called with ``rows=``) draws from a
    global generator (torch's CPU or CUDA ones, NumPy's, ``random``'s): their states change. A model
    that draws from none (every model deterministic in eval mode) is known so after one small pass. A
    generator the model holds as a module attribute is watched too inside :func:`~.state.audit_mode`
    (which restores every one of them); one created inside ``forward`` or held elsewhere is not seen.

    Examples:
        >>> class Noisy(nn.Module):
        ...     def forward(self, x):
        ...         return x + torch.randn_like(x)
        >>> x = torch.ones(3, 2)
        >>> draws_random_numbers(lambda x, rows: Noisy()(x), (x,)), draws_random_numbers(lambda x, rows: nn.Identity()(x), (x,))
        (True, False)
    """
    m = min(samples, xs[0].shape[0])
    with GeneratorWatch() as watch:
        forward(*(x[:m] for x in xs), rows=torch.arange(m, device=xs[0].device))
    return bool(watch.moved)


def noise_scale(forward: Callable[..., Tensor], xs: tuple[Tensor, ...], samples: int = NOISE_SAMPLES,
                drew: bool | None = None) -> float:
    """``max |f(x) - f(x)|`` of two passes of the first ``samples`` samples (``forward`` called with
    ``rows=``, as :class:`~.forward.Forward`), or ``0.0`` when they agree to rounding (``1e-4`` of
    the output's scale ``1 + max |f(x)|``; ``1e-2`` in half precision): a model that gives two
    answers for one input draws random numbers in its forward pass. The two passes run only for a
    model that draws from a global generator (:func:`draws_random_numbers`, one pass of
    :data:`DRAW_SAMPLES` samples): a deterministic model costs that one small pass, or none where
    ``drew`` says already whether the model drew in a pass of the caller's (:class:`GeneratorWatch`).
    Call it inside :func:`~.state.audit_mode` (the global generators are restored there)."""
    if drew is False or (drew is None and not draws_random_numbers(forward, xs)):
        return 0.0
    m = min(samples, xs[0].shape[0])
    rows = torch.arange(m, device=xs[0].device)
    one = forward(*(x[:m] for x in xs), rows=rows)
    two = forward(*(x[:m] for x in xs), rows=rows)
    if not (isinstance(one, Tensor) and isinstance(two, Tensor) and one.is_floating_point() and one.shape == two.shape):
        return 0.0
    a, b = one.detach().double(), two.detach().double()
    if not bool(torch.isfinite(a).all() and torch.isfinite(b).all()):
        a, b = torch.nan_to_num(a, 0.0, 0.0, 0.0), torch.nan_to_num(b, 0.0, 0.0, 0.0)
    diff = float((a - b).abs().max()) if a.numel() else 0.0
    tol = (1e-2 if one.element_size() < 4 else 1e-4) * (1.0 + float(a.abs().max() if a.numel() else 0.0))
    return diff if diff > tol else 0.0


#: how :func:`warn_noise` and :func:`warn_separate_noise` begin (the callback notes such an audit's numbers)
RANDOM_MODEL = "The model draws random numbers in eval mode"
#: what follows the estimator's name in :func:`warn_separate_noise`
SEPARATE_DRAWS = "does not use common random numbers"


def warn_noise(stacklevel: int | None = None) -> None:
    """The ``UserWarning`` of an estimator that found the model drawing noise (:func:`noise_scale`)
    and runs it with common random numbers. One text for all of them, with no number: a fit of
    several audits (shown once per fit by the callback) says it once. ``stacklevel``: ``None`` = the
    first caller outside this package."""
    warnings.warn(
        f"{RANDOM_MODEL} (two passes of the same samples give different outputs: "
        "dropout with training=True, a sampled latent z = mu + sigma * eps, noise that ignores self.training). "
        "Effects, interventional curves, the layer map, deletion/insertion curves, Sobol' indices and ICC run with common "
        "random numbers: the passes compared for a sample draw the same noise (its clean and intervened passes, the points of "
        "its curve, its counterfactual or triggered copy; row i of A and of every matrix mixing A with B in the "
        "Sobol' design, B its own), so they are the interventions' at fixed noise, for one draw of it; the draw "
        "follows the global RNG state (restored afterwards; seed 0 for each audit of a fit) and `max_batch_size`. "
        "For the model without noise make the forward deterministic in eval mode "
        "(`F.dropout(h, p, training=self.training)`, `z = mu` when not self.training); for the mean over the noise (the "
        "MC-dropout predictive mean), average the results of calls made after different `torch.manual_seed(k)`, or, in a "
        "fit (whose audits all start from seed 0), have the eval-mode forward average K draws "
        "(`torch.stack([self.head(F.dropout(h, p, training=True)) for _ in range(K)]).mean(0)`)",
        UserWarning, stacklevel=outside_package() if stacklevel is None else stacklevel)


def noise_warned(forward: Callable[..., Tensor], xs: tuple[Tensor, ...], *, drew: bool | None = None,
                 stacklevel: int | None = None) -> float:
    """:func:`noise_scale` of the model ``forward`` calls on ``xs`` (``drew`` as there), with :func:`warn_noise`
    (``stacklevel`` as there) where it is not 0: the check of every estimator that runs a noisy model with common
    random numbers. Call it inside :func:`~.state.audit_mode`.

    Examples:
        >>> import torch
        >>> noise_warned(lambda x, rows: 2 * x, (torch.ones(3, 2),))
        0.0
    """
    scale = noise_scale(forward, xs, drew=drew)
    if scale:
        warn_noise(stacklevel=stacklevel)
    return scale


def common_noise(forward: Callable[..., Tensor], model: nn.Module, xs: tuple[Tensor, ...],
                 rows: int | Callable[[], int], stacklevel: int | None = None, drew: bool | None = None) -> CommonNoise | None:
    """A :class:`CommonNoise` of blocks of ``rows`` samples, with :func:`warn_noise`, when ``model``
    (called by ``forward``) draws noise (:func:`noise_scale`); ``None`` otherwise. ``rows`` may be a
    callable, called only for a model that draws (a block size that costs a trial pass to find);
    ``drew`` as in :func:`noise_scale`."""
    if not noise_warned(forward, xs, drew=drew, stacklevel=stacklevel):
        return None
    return CommonNoise(xs[0].shape[0], rows() if callable(rows) else rows, model_devices(model))


def warn_separate_noise(forward: Callable[..., Tensor], xs: tuple[Tensor, ...], what: str, stacklevel: int | None = None,
                        drew: bool | None = None) -> bool:
    """Warn when the model called by ``forward`` draws noise (:func:`noise_scale`; ``drew`` as there) and
    ``what`` (an estimator that does not use common random numbers) compares passes that draw it
    separately; return whether it does. Call it inside :func:`~.state.audit_mode`."""
    if not noise_scale(forward, xs, drew=drew):
        return False
    warnings.warn(
        f"{RANDOM_MODEL} (two passes of the same samples give different outputs: dropout "
        "with training=True, a sampled latent z = mu + sigma * eps, noise that ignores self.training). "
        f"{what} {SEPARATE_DRAWS}: the passes it compares draw their noise separately, so its "
        "figures hold differences of noise draws, which change with `max_batch_size` and the global RNG state "
        "(restored afterwards). Make the forward deterministic in eval mode (`F.dropout(h, p, training=self.training)`, "
        "`z = mu` when not self.training); input_effects, unit_effects, interventional_expectations, sobol_indices, "
        "intrinsic_causal_contributions, counterfactual_fairness_gap, trigger_effect, layer_causal_map and the "
        "deletion/insertion curves use common random numbers",
        UserWarning, stacklevel=outside_package() if stacklevel is None else stacklevel)
    return True


class CommonNoise:
    """Common random numbers for a model that draws noise: the ``n`` samples run in consecutive
    blocks of ``size`` (``min(rows, n)``), and every pass of block ``k`` (the clean one and each
    intervened one) starts from the seed ``base + k``, so that each sample draws the same noise in
    all of them (noise drawn in shapes that follow the batch, in the same order in every pass).

    ``base`` is drawn from the global CPU generator (in :func:`~.state.audit_mode`, which restores
    it): the caller's RNG state chooses the draw. Seeds are set on the CPU generator, on the CUDA
    ``devices`` only (:func:`model_devices`, the ones the caller's state is restored for), on
    NumPy's and ``random``'s generators and on the model's own (restored there too). ``seeded=False`` runs the
    same blocks without drawing ``base`` or setting a generator: the blocks of a model that draws nothing, one
    intervention per pass (the units of rows every sample shares, :mod:`~..effects.shared_units`).

    Examples:
        >>> class Noisy(nn.Module):
        ...     def forward(self, x):
        ...         return x.sum(1, keepdim=True) + torch.randn(x.shape[0], 1)
        >>> model, x = Noisy(), torch.ones(5, 2)
        >>> crn = CommonNoise(5, rows=2, devices=[])
        >>> clean = crn.clean(lambda s: model(x[s]))[:, 0]
        >>> moved = crn.rows(1, lambda b, s: model(x[s] * 0)[:, 0])  # do(x := 0)
        >>> torch.allclose(clean - moved[0], torch.full((5,), 2.0))
        True
    """

    def __init__(self, n: int, rows: int, devices: list[int], *, seeded: bool = True) -> None:
        self.n, self.size = n, max(1, min(rows, n))
        self.count = -(-n // self.size)
        self.devices = devices
        self.seeded = seeded  # False: the same blocks of samples for a model that draws nothing, no generator touched
        self.base = int(torch.randint(0, 2**62, (1,))) if seeded else 0

    def seed(self, block: int, stream: int = 0) -> None:
        """Set the generators to the seed of sample block ``block`` (in noise stream ``stream``): torch's
        CPU one and those of the CUDA ``devices``, NumPy's and ``random``'s (a model may draw from any
        of them, :func:`generator_states`); nothing where the blocks are not ``seeded``."""
        if not self.seeded:
            return
        seed = self.base + stream * self.count + block
        torch.default_generator.manual_seed(seed)
        for d in self.devices:
            torch.cuda.default_generators[d].manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        for g in active_generators():  # the model's own (audit_mode restores them)
            g.manual_seed(seed)

    def samples(self, block: int, device: torch.device) -> Tensor:
        """The sample indices of block ``block``."""
        return torch.arange(block * self.size, min((block + 1) * self.size, self.n), device=device)

    def clean(self, fn: Callable[[Tensor], Tensor], device: torch.device | None = None) -> Tensor:
        """``fn(samples)`` of every block, each run from its block's seed, concatenated ``[n, ...]``."""
        parts = []
        for k in range(self.count):
            self.seed(k)
            parts.append(fn(self.samples(k, device or torch.device("cpu"))))
        return torch.cat(parts)

    def rows(self, blocks: int, fn: Callable[[int, Tensor], Tensor], device: torch.device | None = None,
             streams: Sequence[int] | None = None) -> Tensor:
        """``[blocks, n, ...]``: ``fn(b, samples)`` for each intervention block ``b`` (rows ``b·n + s`` of
        the caller's flat index) and sample block, run from the sample block's seed (through
        :func:`~.batching.map_rows`, so a distributed run shares the passes out). ``streams[b]``
        (default 0, the clean passes' stream) gives block ``b`` noise of another stream: independent
        of the others' (Sobol' indices' matrix ``B``)."""
        device = device or torch.device("cpu")

        def evaluate(idx: Tensor) -> Tensor:
            b, k = divmod(int(idx[0]), self.count)
            self.seed(k, 0 if streams is None else int(streams[b]))
            out = fn(b, self.samples(k, device))
            short = self.size - out.shape[0]  # the last block: padded to the common size, trimmed below
            return torch.cat([out, out[-1:].expand(short, *out.shape[1:])]).unsqueeze(0) if short else out.unsqueeze(0)

        flat = map_rows(blocks * self.count, 1, evaluate, device)
        return flat.reshape(blocks, self.count * self.size, *flat.shape[2:])[:, : self.n]

    def active(self, changed: Tensor, clean: Tensor, evaluate: Callable[[Tensor], Tensor]) -> Tensor:
        """``changed``-shaped ``[..., n]`` outputs of the rows of a flat index ``r = b·n + s``
        (``evaluate(r)``), each block of samples from its seed; rows that change nothing keep
        ``clean`` ``[n]`` (the clean outputs of the same seeds), as the deterministic path does."""
        flat = changed.reshape(-1, self.n)
        device = clean.device
        out = self.rows(flat.shape[0], lambda b, s: evaluate(b * self.n + s), device)
        return torch.where(flat.to(device), out, clean.expand_as(out)).reshape(changed.shape)
