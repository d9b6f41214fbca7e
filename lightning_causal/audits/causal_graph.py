"""CausalGraphAudit: the causal explanatory graph of chosen layers, its faithfulness and stability,
and the edges gained and lost since the previous audit epoch."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lightning_causal.audits.base import (
    Audit,
    AuditResult,
    Probe,
    check_layer_rows,
    layer_names,
    whole_model,
)
from lightning_causal.audits.label_task import GUESS_ROWS
from lightning_causal.audits.options import (
    check_class_name_count,
    check_names,
    check_target,
    check_unit_name_count,
    check_unit_names,
    first_row_outputs,
    names_meta,
    regression_labels,
    task_model,
    warn_predicted_class_of_regression,
)
from lightning_causal.audits.top_share import RULED_OUT_FIX, RULED_OUT_TARGET
from lightning_causal.causal.engine.checks import check_choice, check_float, check_int, check_seed
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.input_noise import codes_kept_note, float_code_elements
from lightning_causal.causal.engine.input_sites import check_site
from lightning_causal.causal.engine.probe_warnings import (
    ProbeContentsWarning,
    RepeatedSamplesWarning,
)
from lightning_causal.causal.engine.state import as_tuple
from lightning_causal.causal.engine.units import per_layer_layouts
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.structure.graph import causal_graph, graph_stability
from lightning_causal.causal.structure.graph_context import ValueSpec, check_value_spec
from lightning_causal.causal.structure.graph_data import CausalGraph
from lightning_causal.causal.structure.significance import (
    ALTERNATIVES,
    CORRECTIONS,
    Alternative,
    Correction,
)

__all__ = ["CausalGraphAudit"]

PerLayer = int | Mapping[str, int] | None

PREVIOUS_RUN_SCALARS = ("edges_gained", "edges_lost", "edge_jaccard_previous")  # compared with the previous run: none at the
# first, nor at a run whose units changed (meta["units_changed"])
_NODE_COLUMNS = ("effect", "class", "class_effect", "se", "z", "p_value", "share")
_EDGE_COLUMNS = ("effect", "se", "z", "p_value", "p_adjusted", "share")


def _without_spread(probe: Probe) -> str:
    """``"one sample"`` or ``"N identical samples"`` (every input tensor equal across the samples), else ``""``."""
    n = len(probe)
    if n < 2:
        return "one sample"
    xs = probe.inputs if isinstance(probe.inputs, tuple) else (probe.inputs,)
    if all(torch.equal(x, x[:1].expand_as(x)) for x in xs):
        return f"{n} identical samples"
    return ""


def _spreadless_note(spreadless: str, alternative: str) -> str:
    """What a probe without spread does to the graph's tests (with ``alternative``) and its faithfulness."""
    one = "p = 0.5: a unit is kept only with alpha >= 0.5" if alternative == "greater" else "p = 1.0: a unit is kept only with alpha=1.0"
    tests = (f"the paired t-tests have no spread to test (no standard error: z = 0, {one})" if spreadless == "one sample"
             else "the paired t-tests see no spread (every non-zero effect has z = inf, p = 0: kept as if certain)")
    return (f"{tests}, and the mean ablation sets every unit to its own value (faithfulness undefined unless "
            "ablation='zero'); audit more, different samples")


def _no_edges_note(graph: CausalGraph, units: int) -> str:
    """Why a graph of ``units`` unit nodes has no edges: the test each edge must pass (``alpha`` after the correction
    over ``meta["tests"]`` edge tests) and, where several classes are explained, the samples of each, on which the edges
    into its output are tested (a 100-class model on 128 samples: a median of 2 samples a class among 4980 tests). The
    cause and the ways out come first: the text card keeps a note's first 160 characters.

    Examples:
        >>> g = CausalGraph(["fc"], ["fc:0", "output:0", "output:1"], [], {"fc:0": {}, "output:0": {"samples": 1},
        ...     "output:1": {"samples": 3}}, [], {"correction": "bh", "tests": 8, "samples": 4, "candidates": 2,
        ...     "alpha": 0.05, "min_share": 0.05})
        >>> print(_no_edges_note(g, 1))  # doctest: +NORMALIZE_WHITESPACE
        1 node and no edges: an output's edges are tested on its class's samples (4 in 2 classes, median 2, 1 of one):
        use a larger probe, target=k or a looser test (correction='none', a larger alpha); none of the 2 candidate edges
        (from nodes) has a p-value of at most alpha=0.05 after the bh correction over 8 edge tests (every unit of the
        source layers with a path, nodes or not) with a share of at least 0.05 (a class of one sample has no standard
        error)
    """
    meta = graph.meta
    rule = (f"after the {meta['correction']} correction over {meta['tests']} edge tests (every unit of the source layers "
            "with a path, nodes or not)" if meta["correction"] != "none" else f"uncorrected ({meta['tests']} edge tests)")
    counts = sorted(int(graph.node_stats[n]["samples"]) for n in graph.nodes if n.startswith("output:"))
    test = (f"none of the {meta['candidates']} candidate edges (from nodes) has a p-value of at most alpha={meta['alpha']:g} "
            f"{rule} with a share of at least {meta['min_share']:g}")
    units_text = f"{units} node{'s' if units != 1 else ''} and no edges"
    if len(counts) < 2:  # one explained class: target= changes nothing
        return f"{units_text}: {test}. A larger probe or a looser test (correction='none', a larger alpha) can keep edges"
    mid = len(counts) // 2
    median = counts[mid] if len(counts) % 2 else (counts[mid - 1] + counts[mid]) / 2
    return (f"{units_text}: an output's edges are tested on its class's samples ({meta['samples']} in {len(counts)} "
            f"classes, median {median:g}, {sum(c == 1 for c in counts)} of one): use a larger probe, target=k or a looser "
            f"test (correction='none', a larger alpha); {test} (a class of one sample has no standard error)")


class CausalGraphAudit(Audit):
    """Causal explanatory graph of chosen layers (:func:`~lightning_causal.causal.structure.graph.causal_graph`).

    Reports the graph (``graphs["causal_graph"]``, drawn as layered columns with edge width and
    colour for the strength and sign of each path effect); the nodes and edges with their
    statistics (tables ``nodes`` and ``edges``: effect, standard error, z, p-value, adjusted
    p-value, share); the scalars ``n_nodes``, ``n_edges``, ``edge_density`` (kept / candidate
    edges) and ``faithfulness`` (the graph run as a circuit); the stability of the edge set
    (``stability_resample`` and ``stability_noise``: Jaccard overlaps under probe resampling and
    input noise; no ``stability_noise`` for token ids, with a note) and, from the second run on, the edges gained and lost since the previous run
    (``edge_changes`` table, ``edges_gained``, ``edges_lost``, ``edge_jaccard_previous``), left out with a note at a
    run whose layers' units (``meta["units"]`` of the graph) or explained output's width (``meta["outputs"]``) changed
    since the previous (a head grown to more classes: node ``head:7`` is no unit of the earlier graph), the result's
    ``meta["units_changed"]`` saying what changed (read by ``AuditEarlyStopping``/``AuditModelCheckpoint``). The graph's
    ``meta`` says what its output nodes are (``regression`` or ``multi_label``, and an int ``target``), for the figure's
    title ("effects of do(unit := 0) on output 1"). A probe
    of one sample, or of copies of one sample, has no spread for the tests (one sample: no unit is
    kept; copies: every non-zero effect has z = inf) nor for the mean ablation: a ``UserWarning``
    (at set-up in a fit) and a note say so.

    Args:
        layers: module names in forward order.
        top_k: at most this many nodes per layer (``None``: no cap).
        alpha: significance level of the node and edge tests.
        min_share: smallest share of the strongest effect of a layer (nodes) or into a unit (edges).
        correction: multiple-testing correction (``"bh"``, ``"holm"``, ``"none"``) over the edge tests of every unit of
            the source layers with a path to the target, nodes or not (``meta["tests"]``), of which the nodes' edges
            (the candidates) are kept.
        alternative: ``"greater"`` or ``"two-sided"`` (inhibiting units and paths too).
        baseline: intervention value of the effects (``"zero"``, ``"mean"`` or a number).
        ablation: value of what is not in the graph in the faithfulness run (default ``"mean"``; on
            a padded probe the mean over the samples whose position is real).
        target: class to explain; ``None`` = the predicted class of each probe sample.
        stability_resamples: bootstrap / noise repetitions for the stability scalars (0 = skip;
            each costs two more graphs).
        noise: input noise for the stability, in standard deviations of each input element (a column, a pixel)
            over the probe's samples.
        seed: seed of the private generator of the stability resamples.
        output: which tensor of the model's return value to explain (see
            :class:`~lightning_causal.causal.engine.forward.Forward`).
        additional_forward_args: extra forward arguments (a tuple: positional, a Mapping: keywords);
            default: the probe's (an attention mask, sequence lengths).
        unit_dim: the dimension that indexes the units of each layer, for all layers or per layer
            (a mapping): ``unit_dim=-1`` for the neurons of ``[N, T, D]`` hidden states (as
            ``UnitImportanceAudit``); the default, dimension 1, is refused at set-up on layers whose
            features are last.
        num_heads: split the unit dimension into heads, for all layers or per layer (a mapping):
            ``num_heads=H`` for attention heads (as ``UnitImportanceAudit``).
        name: tag of the audit (default ``"causal_graph"``).
        class_names: one name per class (output) of the model, drawn beside the graph's output nodes
            and written after them in the text summary (``output:1 (chirp)``); their ids stay
            ``output:<c>`` in the tables and reports (``graphs["causal_graph"]["meta"]`` keeps the names). A list of fewer names than outputs is a ``ValueError``;
            more are accepted (one list for a head that grows during the fit, given from the start).
        unit_names: names of the units of some layers, ``{layer: [name of unit 0, ...]}``, one per unit as
            ``unit_dim``/``num_heads`` lay them out (the tokens of a tabular transformer, ``unit_dim=1``: ``["[CLS]",
            "age", ..., "sex"]``), as ``UnitImportanceAudit``'s: written left of each node in the figure (at most 18
            characters), after the node ids in the text summary (``tokens:3 (age)``), as the ``name`` of the
            ``nodes`` rows and the ``source_name``/``target_name`` of the ``edges`` rows, in
            ``graphs["causal_graph"]["meta"]["unit_names"]`` and ``meta["unit_names/<layer>"]``; a count other than
            the layer's units is a ``ValueError`` at the first run (the dry run at set-up).

    Examples:
        >>> import torch
        >>> from lightning_causal.models import MLP
        >>> r = CausalGraphAudit(["net.1", "net.3"], top_k=2, stability_resamples=0).run(MLP(4), Probe(torch.randn(16, 4)))
        >>> r.graphs["causal_graph"]["kind"], "faithfulness" in r.scalars
        ('causal_graph', True)
    """

    takes_every_input = True  # a probe of several inputs is explained over all of them (CausalAuditCallback's `explain=` leaves it)

    def __init__(
        self,
        layers: Sequence[str],
        top_k: int | None = 8,
        *,
        alpha: float = 0.05,
        min_share: float = 0.05,
        correction: Correction = "bh",
        alternative: Alternative = "greater",
        baseline: ValueSpec = "zero",
        ablation: ValueSpec = "mean",
        target: int | None = None,
        stability_resamples: int = 2,
        noise: float = 0.05,
        seed: int = 0,
        output: OutputSpec = None,
        additional_forward_args: Any = None,
        unit_dim: PerLayer = None,
        num_heads: PerLayer = None,
        name: str | None = None,
        class_names: Sequence[str] | None = None,
        unit_names: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__(name, output=output)
        self.layers = layer_names(layers)
        self.class_names = check_names("class_names", class_names)
        self.unit_names = check_unit_names(unit_names, self.layers)
        dims, heads = per_layer_layouts(unit_dim, num_heads, self.layers)
        self.options: dict[str, Any] = {
            "alpha": check_float("alpha", alpha, minimum=0.0, maximum=1.0, open_min=True),
            "min_share": check_float("min_share", min_share, minimum=0.0, maximum=1.0),
            "correction": check_choice("correction", correction, CORRECTIONS),
            "alternative": check_choice("alternative", alternative, ALTERNATIVES),
            "baseline": check_value_spec("baseline", baseline),
            "ablation": check_value_spec("ablation", ablation),
            "target": check_target(target),
            "output": self.output,
            "additional_forward_args": additional_forward_args,
            "unit_dim": unit_dim,
            "num_heads": num_heads,
        }
        self.top_k = check_int("top_k", top_k, minimum=1, none_ok=True)
        self.stability_resamples = check_int("stability_resamples", stability_resamples, minimum=0)
        self.noise = check_float("noise", noise, minimum=0.0)
        self.seed = check_seed(seed)
        self._previous: CausalGraph | None = None

    def validate(self, model: nn.Module, probe: Probe) -> None:
        """Check the layers: modules of ``model``, each returning one row per sample in a pass of the whole probe
        (:func:`~lightning_causal.audits.base.check_layer_rows`: an expert of a mixture is refused at set-up).

        Args:
            model: the model under audit.
            probe: the probe.

        Raises:
            ValueError: a layer is no module of ``model``, or returns fewer rows than the probe's samples.
        """
        for layer in self.layers:
            check_site(model, layer)
        check_layer_rows(model, probe, self.layers, self.options["additional_forward_args"])

    def dry_run(self, model: nn.Module, probe: Probe) -> AuditResult | None:
        """The run on 2 probe samples (:meth:`Audit.dry_run`), whose spread (two equal rows) says nothing of the
        whole probe's: the spread warning (a :class:`~lightning_causal.causal.engine.probe_warnings.ProbeContentsWarning`,
        which the 2-sample run leaves out) is checked on the whole probe instead.

        Args:
            model: the model under audit, as in :meth:`Audit.run`.
            probe: the probe, as in :meth:`Audit.run`.
        """
        result = super().dry_run(model, probe)  # its warnings of the 2 samples' contents (ProbeContentsWarning) ignored
        spreadless = _without_spread(probe)
        if spreadless:
            warnings.warn(f"CausalGraphAudit {self.name!r}: the probe holds {spreadless}, so " + _spreadless_note(spreadless, self.options["alternative"]),
                          ProbeContentsWarning, stacklevel=outside_package())
        return result

    def state_dict(self) -> dict[str, Any]:
        """The previous run's graph (``CausalGraph.to_dict()``: plain values), so that the edges
        gained and lost continue across a resume from a checkpoint."""
        return {} if self._previous is None else {"previous": self._previous.to_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        previous = state.get("previous")
        self._previous = None if previous is None else CausalGraph.from_dict(previous)

    def _note_small_shift(self, graph: CausalGraph, ends: list[float], result: AuditResult) -> None:
        """Note and warn when the faithfulness ratio divides by a shift of the mean explained output
        (full model minus every unit ablated) below a tenth of that output's standard deviation over
        the probe (``graph.meta["logit_full_sd"]``, of the graph's clean pass): a regression output
        (a forecast), whose ablated mean stays near its mean, gave -18 on a TCN forecaster, and such a
        ratio says nothing of the graph."""
        spread = float(graph.meta.get("logit_full_sd", math.nan))
        shift = abs(ends[0] - ends[1])
        if math.isfinite(spread) and spread > 0 and shift < 0.1 * spread:
            note = (f"CausalGraphAudit {self.name!r}: faithfulness {result.scalars['faithfulness']:.3g} divides by the shift "
                    f"of the mean explained output when every unit of the layers is ablated, {shift:.3g}, under a tenth of "
                    f"that output's standard deviation over the probe ({spread:.3g}), so the ratio says little of the graph "
                    "(as for a regression output, whose ablated mean stays near its mean); read the edges and node effects")
            result.meta.setdefault("notes", []).append(note)
            warnings.warn(note, UserWarning, stacklevel=outside_package())

    def _named(self, node: str, key: str) -> dict[str, str]:
        """``{key: name}`` of a unit node of a layer with ``unit_names``, else ``{}``."""
        layer, _, unit = node.rpartition(":")
        names = self.unit_names.get(layer)
        return {key: names[int(unit)]} if names is not None and unit.isdigit() and int(unit) < len(names) else {}

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        options = {**self.options, "max_batch_size": max_batch_size}
        if options["additional_forward_args"] is None:  # the probe's (an attention mask, sequence lengths)
            options["additional_forward_args"] = probe.additional_forward_args
        first_row = first_row_outputs(model, Probe(probe.inputs, probe.labels, options["additional_forward_args"]), self.output,
                                      rows=GUESS_ROWS)  # as many rows as ascending_outputs needs: one pass still
        if options["target"] is None:  # with the audit's own additional_forward_args where given, as the graph's passes
            warn_predicted_class_of_regression(f"CausalGraphAudit {self.name!r}", probe.labels, first_row, model=model, output=self.output)
        if self.class_names is not None:
            first = first_row()
            check_class_name_count(self.class_names, int(first.shape[1]) if first.dim() > 1 else 1)
        spreadless = _without_spread(probe)
        with warnings.catch_warnings():
            if spreadless:  # identical samples: the audit's own note below says it, and why
                warnings.simplefilter("ignore", RepeatedSamplesWarning)
            graph = causal_graph(model, probe.inputs, self.layers, self.top_k, **options)
        for layer, names in self.unit_names.items():  # the units as unit_dim/num_heads lay them out
            layout = graph.meta.get("unit_layouts", {}).get(layer, {})
            check_unit_name_count(names, layer, int(graph.meta["units"][layer]),
                                  f"unit_dim={layout.get('unit_dim')}, num_heads={layout.get('num_heads')}")
        graph.meta["whole_model"] = whole_model(model)  # the figure's title names its class; the previous graph holds it too
        result = AuditResult(self.name, graphs={"causal_graph": graph.to_dict()})
        if self.class_names is not None:
            result.graphs["causal_graph"].setdefault("meta", {})["class_names"] = list(self.class_names)
        if self.unit_names:  # drawn beside their nodes, written after their ids in the text summary
            result.graphs["causal_graph"].setdefault("meta", {})["unit_names"] = {k: list(v) for k, v in self.unit_names.items()}
            result.meta.update({f"unit_names/{layer}": list(names) for layer, names in self.unit_names.items()})
        # what the output nodes are, for the figure's title ("on output 1", "on the explained class's score"): a regression's
        # or multi-label model's columns are no classes; a fixed int target is one output for every sample
        # (read from the graph's output width: no pass of the model beyond the graph's)
        width = int(graph.meta.get("outputs", 1))
        task = names_meta(None, None, None, None, outputs=torch.empty(1, width), labels=probe.labels,
                          model=task_model(model, self.output))
        fixed = options["target"]
        result.graphs["causal_graph"].setdefault("meta", {}).update(
            {k: v for k, v in task.items() if k in ("regression", "multi_label")},
            **({"target": int(fixed)} if isinstance(fixed, int) and not isinstance(fixed, bool) else {}))
        result.scalars["faithfulness"] = float(graph.meta["faithfulness"])
        if spreadless:  # the t-tests and the mean ablation have nothing to work with: say why, not a generic cause
            note = f"CausalGraphAudit {self.name!r}: the probe holds {spreadless}, so " + _spreadless_note(spreadless, self.options["alternative"])
            result.meta.setdefault("notes", []).append(note)
            warnings.warn(note, ProbeContentsWarning, stacklevel=outside_package())
        ends = [float(graph.meta.get(k, math.nan)) for k in ("logit_full", "logit_empty")]
        if math.isnan(result.scalars["faithfulness"]) and not all(math.isfinite(v) for v in ends):  # a diverged model
            result.meta.setdefault("notes", []).append(
                f"faithfulness undefined (NaN): the mean explained output is not finite (full model {ends[0]}, every unit "
                f"ablated {ends[1]}), as with NaN weights, or {RULED_OUT_TARGET}: {RULED_OUT_FIX}")
        elif math.isnan(result.scalars["faithfulness"]) and not spreadless:
            fix = "; pass ablation='zero'" if options["ablation"] == "mean" else ""
            if regression_labels(probe.labels, model=task_model(model, self.output)):  # zero ablation moves a regression's mean output by chance: no ratio to read
                fix = ("; the probe's labels are real-valued (a regression), whose mean output ablating a layer barely moves with "
                       "either ablation, so read the edges and node effects rather than this ratio")
            result.meta.setdefault("notes", []).append(
                "faithfulness undefined (NaN): setting every unit of the layers to its ablation value leaves the mean explained "
                "output unchanged (one explained class and a read-out linear in the last layer cancel the probe means, or the "
                "output does not depend on these layers)" + fix
            )
        elif not spreadless and math.isfinite(result.scalars["faithfulness"]):
            self._note_small_shift(graph, ends, result)
        result.scalars["n_nodes"] = float(sum(1 for n in graph.nodes if n.rsplit(":", 1)[0] in self.layers))
        result.scalars["n_edges"] = float(len(graph.edges))
        if result.scalars["n_nodes"] and not graph.edges and not spreadless:  # the probe's spread said above
            note = _no_edges_note(graph, int(result.scalars["n_nodes"]))
            result.meta.setdefault("notes", []).append(note)
            result.graphs["causal_graph"]["meta"]["no_edges"] = note  # the figure says it too (graph_figure)
        result.scalars["edge_density"] = len(graph.edges) / max(1, graph.meta["candidates"])
        # after the faithfulness notes, which the callback's warnings lead with
        lowering = graph.meta.get("lowering_units") or {}
        if lowering and (task.get("regression") or width == 1):  # a value or one score: lowering it is a cause too
            result.meta.setdefault("notes", []).append(
                f"{sum(lowering.values())} units ({', '.join(f'{layer}: {k}' for layer, k in lowering.items())}) lower the "
                "explained output as surely as the graph's nodes raise it (two-sided test), but alternative='greater', "
                "the default, keeps only units that raise it: for a regression or a single score pass "
                "alternative='two-sided' to keep both")
        if self.stability_resamples:
            xs = as_tuple(probe.inputs)  # category codes in float columns take no noise: said in a note
            codes = float_code_elements(Forward(model, output=options.get("output"), num_samples=len(probe),
                                                additional_forward_args=options["additional_forward_args"]), xs)
            stab = graph_stability(model, probe.inputs, self.layers, self.top_k, resamples=self.stability_resamples,
                                   noise=self.noise, seed=self.seed, reference=graph, codes=codes, **options)
            kept = codes_kept_note("stability_noise", xs, codes)
            if kept:
                result.meta.setdefault("notes", []).append(kept)
            result.scalars["stability_resample"] = stab["resample_jaccard"]
            if math.isnan(stab["noise_jaccard"]):
                result.meta.setdefault("notes", []).append(
                    "no stability_noise: the probe holds token ids, which Gaussian noise does not apply to"
                    if not any(x.is_floating_point() for x in as_tuple(probe.inputs)) else
                    "no stability_noise: the only input elements that vary over the probe's samples are category codes "
                    "an embedding reads cast to indices, which take no noise" if kept else
                    "no stability_noise: no input element varies over the probe's samples (one sample?), and the noise is "
                    "scaled by each element's standard deviation over them")
            else:
                result.scalars["stability_noise"] = stab["noise_jaccard"]
        result.tables["nodes"] = [{"node": n, **self._named(n, "name"), **{k: graph.node_stats[n][k] for k in _NODE_COLUMNS}}
                                  for n in graph.nodes if n.rsplit(":", 1)[0] in self.layers]
        order = sorted(range(len(graph.edges)), key=lambda i: -abs(graph.edges[i][2]))
        result.tables["edges"] = [{"source": graph.edges[i][0], "target": graph.edges[i][1], "weight": graph.edges[i][2],
                                   **self._named(graph.edges[i][0], "source_name"), **self._named(graph.edges[i][1], "target_name"),
                                   **{k: graph.edge_stats[i][k] for k in _EDGE_COLUMNS}} for i in order]
        changed = _changed_units(self._previous, graph)
        if changed:  # a head grown, a layer widened or replaced: unit i of the two graphs is not one unit
            result.meta["units_changed"] = changed
            result.meta.setdefault("notes", []).append(
                f"no edges_gained, edges_lost or edge_jaccard_previous at this audit: the units changed since the previous "
                f"audit ({changed}), so its graph's nodes are not the same units; the comparison resumes at the next audit")
        elif self._previous is not None:
            diff = graph.diff(self._previous)
            result.scalars.update(edges_gained=float(len(diff["gained"])), edges_lost=float(len(diff["lost"])),
                                  edge_jaccard_previous=diff["jaccard"])
            result.tables["edge_changes"] = [{"change": kind, "source": s, "target": t}
                                             for kind in ("gained", "lost") for s, t in diff[kind]]
        self._previous = graph
        result.meta.update(top_k=self.top_k, layers=self.layers,
                           **{k: v for k, v in self.options.items() if k not in ("output", "additional_forward_args")})
        return result


def _changed_units(previous: CausalGraph | None, graph: CausalGraph) -> str:
    """What differs between the units of ``previous`` and ``graph`` (``meta["units"]`` of each layer, ``meta["outputs"]``
    the explained output's width), e.g. ``"head: 5 units, now 10; the explained output: 5 columns, now 10"``; ``""``
    where nothing does, where there is no previous graph, or where it records neither (a graph of a checkpoint written
    before they were recorded)."""
    if previous is None or "units" not in previous.meta:
        return ""
    before, now = previous.meta["units"], graph.meta["units"]
    changed = [f"{layer}: {before[layer]} units, now {now[layer]}" for layer in before if layer in now and before[layer] != now[layer]]
    if set(before) != set(now):  # other layers: a renamed or re-chosen layer
        changed.append(f"layers {sorted(before)}, now {sorted(now)}")
    if previous.meta.get("outputs", graph.meta["outputs"]) != graph.meta["outputs"]:
        changed.append(f"the explained output: {previous.meta['outputs']} columns, now {graph.meta['outputs']}")
    return "; ".join(changed)
