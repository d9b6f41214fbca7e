"""Attribution maps of images (``[N, C, H, W]``, ``[N, H, W]``, volumes ``[N, C, D, H, W]``): per sample
the input beside each map as a heatmap, one colour scale per map shared by the samples."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from functools import partial

import torch
from matplotlib.figure import Figure
from torch import Tensor

from lightning_causal.audits.options import tag_safe
from lightning_causal.reporting.card_tags import COMPARE
from lightning_causal.reporting.figure_style import has_negative, not_finite_notes, title_lines
from lightning_causal.reporting.image_figures import heatmap_row, strongest_channel
from lightning_causal.reporting.kept_figures import forget_unused
from lightning_causal.reporting.map_data import (
    MapData,
    baseline_of,
    drawn_samples,
    global_title,
    map_limits,
    sample_title,
    sign_note,
)
from lightning_causal.reporting.not_finite_marks import RINGED

__all__ = ["MAX_MAPS_PER_FIGURE", "image_maps", "map_scales", "map_tags", "sample_figures"]

# maps beside the input in one figure: input | two maps of square images is about 610 x 250 pixels, which a
# TensorBoard card (a box of about 400 x 215) shows at two thirds; a third map (CaptumBaseline with two
# methods: 800 x 250, a 32 x 128 spectrogram's 800 x 156) came out at half size, its titles unreadable
MAX_MAPS_PER_FIGURE = 2


def map_tags(names: list[str], methods: Iterable[str] = ()) -> list[str]:
    """The maps' names as tag segments (:func:`~lightning_causal.audits.options.tag_safe`), numbered
    where two coincide; the maps of Captum's ``methods`` (``meta["methods"]``) filed under ``compare/``,
    after the ``causal`` map in TensorBoard's order (:mod:`~lightning_causal.reporting.card_tags`).

    Args:
        names: the maps' names (``data.maps``' keys, in order).
        methods: the Captum methods, as above.

    Examples:
        >>> map_tags(["causal", "a b", "a_b"])
        ['causal', 'a_b_1', 'a_b_2']
        >>> map_tags(["causal", "IntegratedGradients", "NoiseTunnel(Saliency)"], ["IntegratedGradients", "NoiseTunnel(Saliency)"])
        ['causal', 'compare/IntegratedGradients', 'compare/NoiseTunnel_Saliency']
    """
    methods = set(methods)
    tags = [tag_safe(name) for name in names]
    tags = [t if tags.count(t) == 1 else f"{t}_{k}" for k, t in enumerate(tags)]
    return [f"{COMPARE}/{t}" if name in methods else t for name, t in zip(names, tags)]


def map_scales(data: MapData, drawn: dict[str, Tensor]) -> tuple[dict[str, float], dict[str, bool], str | None]:
    """The colour scales of the values each map draws (``drawn``: name -> values), shared by every sample:
    each map's limit (:func:`~lightning_causal.reporting.map_data.map_limits`: its largest finite |value|), whether it
    is signed (it has a finite negative value: a symmetric diverging scale, else one from 0), and the note below a
    figure of all the maps
    (:func:`~lightning_causal.reporting.map_data.sign_note`; only for maps of a class's score, ``meta["targets"]``).

    Args:
        data: the maps and what they explain.
        drawn: name -> the values drawn of each map.

    Examples:
        >>> import torch
        >>> d = MapData(torch.zeros(1, 4, 4), {"causal": torch.tensor([[[-2.0, 1.0]]]), "Saliency": torch.ones(1, 1, 2)},
        ...             "input_effect", {"targets": [0]})
        >>> map_scales(d, d.maps)
        ({'causal': 2.0, 'Saliency': 1.0}, {'causal': True, 'Saliency': False}, "red: raises the explained class's score, blue: lowers it; Saliency: size only")
    """
    signed = {k: has_negative(v) for k, v in drawn.items()}  # a -inf score signs no scale (figure_style's rule)
    return map_limits(data, drawn), signed, sign_note(signed, data) if data.meta.get("targets") else None


def sample_figures(data: MapData, i: int, maps: dict[str, Tensor], signed: dict[str, bool], note: str | None,
                   draw: Callable[..., Figure], *, drawn: str, title: str | None = None) -> list[tuple[str, Figure]]:
    """Sample ``i``'s figures of ``maps`` (its maps by name) as every map kind files them: one figure of all of
    them (``maps/sample_<i>``, with ``note``), or, beyond :data:`MAX_MAPS_PER_FIGURE` maps, one per map
    (``maps/sample_<i>/<tag>``, :func:`map_tags`), each with its own sign note (``signed``: whether each map's
    scale is signed; :func:`~lightning_causal.reporting.map_data.sign_note`, for maps of a class's score). A map of
    the sample that holds NaN or infinite scores adds ``"<map>: k of n scores are not finite (NaN/inf): <drawn>"`` to
    its figure's note (:func:`~lightning_causal.reporting.figure_style.not_finite_notes`, the rule of every map kind;
    ``n``: the sample's scores of that map; the name where the figure holds several maps). A figure of one map that
    ``meta["baseline"]`` is said of while other maps are not (:func:`~lightning_causal.reporting.map_data.baseline_of`:
    ``CaptumBaseline``'s ``causal``) says it on its title's last line (``"explains class 1 against each group set to
    0"``), its note the one line of the other maps' (the card as tall as theirs).

    Args:
        data: the maps and what they explain.
        i: the sample's index.
        maps: the sample's maps, as ``draw`` takes them.
        signed: per map name, whether its scale is signed.
        note: the note below a figure of all the maps.
        draw: ``draw(maps, note=note) -> Figure``: the kind's figure of some of the sample's maps.
        drawn: how the kind draws a score that is not finite, as its note says it (:data:`~lightning_causal.reporting.not_finite_marks.RINGED` of a heatmap's
            pixels, ``"grey crosses"`` of a point map's points).
        title: the figures' title as ``draw`` takes it (``title=``), for the words on the baseline; ``None``: not said.
    """
    if len(maps) <= MAX_MAPS_PER_FIGURE:
        return [(f"maps/sample_{i}", draw(maps, note=_noted(note, maps, drawn)))]
    targets = data.meta.get("targets")
    b, of = baseline_of(data, list(maps))
    # the baseline of some maps only (CaptumBaseline's causal): said on the title's last line where it fits there
    # ("explains class 1 against each group set to 0"), else in the note: the note with it took two lines, the card
    # 15 px taller than the methods', at 0.69 scale in TensorBoard
    plain = replace(data, meta={k: v for k, v in data.meta.items() if k != "baseline"})
    out = []
    for name, tag in zip(maps, map_tags(list(maps), data.meta.get("methods") or ())):
        one = {name: maps[name]}
        fig = None
        if title is not None and name in of and len(of) < len(maps):
            said = f"{title} against each group set to {b}"
            fig = draw(one, note=_noted(sign_note({name: signed[name]}, plain) if targets else None, one, drawn), title=said)
            chars = max(16, int(fig.get_figwidth() * 12))  # the kinds' title width: about 12 characters of 11 pt per inch
            if len(title_lines(said, chars)) > len(title_lines(title, chars)):
                fig = None  # a line more: the note says it
        if fig is None:
            fig = draw(one, note=_noted(sign_note({name: signed[name]}, data) if targets else None, one, drawn))
        out.append((f"maps/sample_{i}/{tag}", fig))
    return out


def _noted(note: str | None, maps: dict[str, Tensor], drawn: str) -> str | None:
    """``note`` followed by what each of ``maps`` (a sample's) holds that is not finite and how it is ``drawn``, ``None``
    where both are empty."""
    return "; ".join(([note] if note else []) + not_finite_notes(maps, drawn)) or None


def _drawn_planes(maps: Tensor) -> Tensor:
    """The values a heatmap draws of maps ``[N, C, H, W]`` / ``[N, C, D, H, W]``: each pixel's
    channel of largest magnitude (:func:`~lightning_causal.reporting.image_figures.strongest_channel`; the
    channels' mean drew a group of one colour channel at a third of its effect, and opposite groups
    cancelled); ``[N, H, W]`` as they are. Colour scales are set on these values."""
    maps = maps.detach().float()
    return strongest_channel(maps, 1) if maps.dim() in (4, 5) else maps


def _largest_slice(first: Tensor) -> tuple[int, tuple[int, int]]:
    """The depth slice of a map ``[C, D, H, W]`` of largest mean |score| (NaN and infinite scores counted 0), and the
    run of slices ``(first, last)`` that equal it beside it: of groups spanning several slices (octants, cubes) every
    slice of the group's run is the largest, and the middle one is drawn (the first showed the volume's edge slice,
    where a planted blob of the octant's middle is not)."""
    a = first.detach().float().abs()
    score = a.where(a.isfinite(), 0.0).mean(dim=(0, 2, 3))  # a NaN pixel made its slice's mean NaN, which argmax takes
    top = int(score.argmax())
    equal = torch.isclose(score, score[top], rtol=1e-6, atol=0.0).tolist()
    last = top
    while last + 1 < len(equal) and equal[last + 1]:
        last += 1
    return (top + last + 1) // 2, (top, last)


def image_maps(data: MapData, *, reuse: bool = False, kept: dict | None = None) -> list[tuple[str, Figure]] | Iterator[tuple[str, Figure]]:
    """One heatmap figure per sample, input | each map (``maps/sample_<i>``); more than
    :data:`MAX_MAPS_PER_FIGURE` maps (the causal effect beside two or more Captum methods): one figure per
    sample and map, input | map (``maps/sample_<i>/<map>``, the map's name made tag-safe), so that each is
    readable in a TensorBoard card. One colour scale per map shared by the samples (and the cards): symmetric and diverging for a signed map, from 0 for a map without negative values
    (Saliency). A volume ``[C, D, H, W]`` is drawn at one depth slice: the one where the first map
    (causal) has the largest mean |score| (of several neighbouring slices of equal score, a group spanning them,
    the middle one), named in the title. ``data.image_origin="lower"`` draws the input and every map with row 0
    at the bottom (a spectrogram ``[N, 1, F, T]``: low frequencies below, as audio tools draw it). Signed maps of a class's score
    (``meta["targets"]``: effects, attributions) say below what red and blue mean. A NaN or infinite score is a grey pixel,
    counts towards no colour scale, and the note below says how many of the sample's scores of each map are not finite
    (:func:`sample_figures`; :mod:`~lightning_causal.reporting.figure_style`'s rule for every map kind).

    Args:
        data: the maps ``[N, C, H, W]`` (or ``[N, H, W]``, ``[N, C, D, H, W]``) and the probe inputs
            they explain.
        reuse: give the figures one at a time (an iterator), a sample's row redrawing the figure of an earlier
            sample's row of the same layout (:func:`~lightning_causal.reporting.image_figures.heatmap_row`'s
            ``reuse``): for a caller that draws or saves each figure before taking the next (the TensorBoard
            writer's path), never one that keeps them.
        kept: with ``reuse``, the rows' figures kept from one call to the next (``{}`` at first; the writer's, one per
            audit, kept from one audit epoch to the next): a row of a later call redraws the figure of an earlier call's
            row of the same panels, colour maps, note and title height, its colour limits set and laid out again as a
            new figure would be; ``None``: a call's rows share only their own figures.
    """
    figures = _image_maps(data, reuse, kept)
    return figures if reuse else list(figures)


def _image_maps(data: MapData, reuse: bool, kept: dict | None = None) -> Iterator[tuple[str, Figure]]:
    n, glob = drawn_samples(data)
    planes = {k: _drawn_planes(v[:n]) for k, v in data.maps.items()}  # what is drawn: each pixel's strongest channel
    vmax, signed, note = map_scales(data, planes)  # one scale per map for every sample
    layout: dict = {} if kept is None else kept  # the rows share their layouts and figures (heatmap_row's ``layout``)
    for key in [key for key in layout if key[0] != "figure"]:  # the last call's subplot parameters: of its colour limits
        del layout[key]
    forget_unused(kept)  # rows of the last call's layouts only: a note changing every epoch kept a figure per epoch
    for i in range(n):
        title = global_title(data) if glob else sample_title(data, i)
        sample, maps = data.inputs[i], {k: v[i] for k, v in data.maps.items()}
        if sample.dim() == 4:  # [C, D, H, W]
            d, run = _largest_slice(next(iter(maps.values())))
            sample, maps = sample[:, d], {k: v[:, d] for k, v in maps.items()}
            equal = f"; {run[0]}–{run[1]} equal, the middle one" if run[1] > run[0] else ""
            title = f"{title}, depth slice {d} of 0–{data.inputs.shape[2] - 1} (largest mean |{next(iter(data.maps))}|{equal})"
        # a map drawn alone: its panel is titled with its name
        yield from sample_figures(data, i, maps, signed, note, partial(heatmap_row, sample, vmax=vmax, title=title, signed=signed,
                                                                                  layout=layout, origin=data.image_origin, reuse=reuse), drawn=RINGED,
                                  title=title)
