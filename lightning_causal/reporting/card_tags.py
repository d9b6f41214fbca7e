"""Where an explanation's TensorBoard cards are filed: a Captum method's under ``compare/<method>``.

TensorBoard lists the cards of a run sorted by tag, upper case before lower case, so the cards of
``CaptumBaseline``'s methods, named after Captum's classes (``IntegratedGradients``, ``Saliency``),
came before the ``causal`` card they are the baseline for (``maps/sample_0/IntegratedGradients``,
``maps/sample_0/Saliency``, ``maps/sample_0/causal``). Filed under ``compare/`` — the section of the
methods' agreement scalars, ``compare/<method>/spearman`` — they follow it: ``maps/sample_0/causal``,
``maps/sample_0/compare/IntegratedGradients``. Only the tags change; the result's keys (``maps``,
``vectors``, ``scalars``, the JSON report) keep the method's name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lightning_causal.audits.options import tag_safe

__all__ = ["COMPARE", "filed", "method_names"]

#: The tag section of the Captum methods' cards: after ``causal`` in TensorBoard's order ("ca" < "co").
COMPARE = "compare"


def method_names(meta: Mapping[str, Any]) -> frozenset[str]:
    """The Captum methods of a result (``meta["methods"]``, written by ``CaptumBaseline``), as given and tag-safe.

    Args:
        meta: a result's ``meta``.

    Examples:
        >>> sorted(method_names({"methods": ["Saliency", "NoiseTunnel(Saliency)"]}))
        ['NoiseTunnel(Saliency)', 'NoiseTunnel_Saliency', 'Saliency']
    """
    methods = [str(m) for m in meta.get("methods") or ()]
    return frozenset(methods) | {tag_safe(m) for m in methods}


def filed(path: str, methods: Iterable[str]) -> str:
    """``path`` (segments joined by ``/``) with each segment that names one of ``methods`` filed under :data:`COMPARE`.

    Args:
        path: a tag or tag suffix.
        methods: the Captum method names (as :func:`method_names` gives them).

    Examples:
        >>> filed("histograms/mean_abs/Saliency", {"Saliency"}), filed("drift/mean_abs/causal/spearman", {"Saliency"})
        ('histograms/mean_abs/compare/Saliency', 'drift/mean_abs/causal/spearman')
    """
    methods = set(methods)
    return "/".join(f"{COMPARE}/{part}" if part in methods else part for part in path.split("/"))
