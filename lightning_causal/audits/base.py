"""The audit protocol: :class:`Probe`, :class:`AuditResult` and the :class:`Audit` base class.

An audit is a configurable unit of analysis. ``Audit.run(model, probe)`` returns an
:class:`AuditResult`, plain data that the reporting layer renders (TensorBoard, JSON) and
that the callback compares across epochs (causal drift).
"""

from __future__ import annotations

import math
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lightning_causal.audits.logit_reads import judged_run
from lightning_causal.causal.effects.shared_units import check_rows_shared
from lightning_causal.causal.engine.eager import user_name
from lightning_causal.causal.engine.folded_rows import shared_rows
from lightning_causal.causal.engine.forward import (
    Forward,
    ForwardArgs,
    OutputSpec,
    check_output_spec,
)
from lightning_causal.causal.engine.forward_args import map_tensors, mark_whole, marks_kept
from lightning_causal.causal.engine.intervention_hooks import capture
from lightning_causal.causal.engine.linked_samples import check_linked_samples, linked_arguments
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning
from lightning_causal.causal.engine.state import as_tuple, audit_mode
from lightning_causal.causal.engine.unit_sites import check_rows_at_sites

SCHEMA_VERSION = 1

__all__ = ["SCHEMA_VERSION", "Audit", "AuditResult", "Probe", "check_layer_rows", "default_name", "layer_names"]


@dataclass
class Probe:
    """A fixed set of inputs (and optional labels and forward arguments) that every audit of a run
    explains.

    Args:
        inputs: a tensor ``[N, ...]`` or a tuple of tensors sharing the first dimension.
        labels: optional labels, one row per sample (used by audits that need ground truth): class
            indices ``[N]``, soft labels ``[N, C]`` (rows summing to 1: mixup, label smoothing, a
            teacher's probabilities; read by their largest entry where an audit needs one class per
            sample, :func:`~lightning_causal.audits.label_task.class_indices`), multi-hot ``[N, C]`` or
            a regression's target; each audit says which it takes.
        additional_forward_args: passed to the model after the inputs (Captum's convention: a
            tuple is positional, a Mapping keywords, e.g. ``{"attention_mask": mask}``); tensors with
            ``N`` rows belong to their samples and travel with them.

    Examples:
        >>> p = Probe(torch.zeros(4, 3), torch.tensor([0, 1, 0, 1]))
        >>> len(p), len(p.subset(torch.tensor([0, 2])))
        (4, 2)
    """

    inputs: Tensor | tuple[Tensor, ...]
    labels: Tensor | None = None
    additional_forward_args: Any = None

    def __post_init__(self) -> None:
        n = as_tuple(self.inputs, "inputs")[0].shape[0]  # tensors of one first dimension, the engine's one check
        if self.labels is not None and (not isinstance(self.labels, Tensor) or self.labels.dim() == 0 or self.labels.shape[0] != n):
            raise ValueError(f"Expected argument `labels` to be a tensor with {n} rows but got {getattr(self.labels, 'shape', self.labels)!r:.80}")
        ForwardArgs(self.additional_forward_args, n)  # validates the container

    def __len__(self) -> int:
        return self.first.shape[0]

    @property
    def first(self) -> Tensor:
        """The first (or only) input tensor."""
        return self.inputs[0] if isinstance(self.inputs, tuple) else self.inputs

    @property
    def forward_options(self) -> dict[str, Any]:
        """``{"additional_forward_args": ...}`` for the estimators of the core."""
        return {"additional_forward_args": self.additional_forward_args}

    def map(self, fn: Any) -> Probe:
        """A copy with ``fn`` applied to every tensor (inputs, labels, tensor forward arguments).

        Args:
            fn: a function ``Tensor -> Tensor``.
        """
        args = self.additional_forward_args  # a subset's marks kept (mark_whole): the places of the tensors stay
        return Probe(map_tensors(self.inputs, fn), map_tensors(self.labels, fn), marks_kept(map_tensors(args, fn), args))

    def to(self, device: torch.device | str) -> Probe:
        """Return a copy on ``device``.

        Args:
            device: the target device.
        """
        return self.map(lambda t: t.to(device))

    def subset(self, rows: Tensor | slice) -> Probe:
        """The probe of the samples ``rows`` (forward arguments with ``N`` rows follow them, but not a
        1-D ``position_ids`` ``[T]`` shared by every row: :class:`~lightning_causal.causal.engine.forward_args.ForwardArgs`).
        The forward arguments this probe passes whole stay whole in the subset, marked
        (:func:`~lightning_causal.causal.engine.forward_args.mark_whole`), where their first dimension equals the
        subset's samples (a weight of 16 rows beside a probe of 4 in a subset of 16 rows: Captum's sensitivity);
        the others are whole there by their shape, and forward arguments without such a tensor are handed on as
        they are (one tensor stays that tensor; one marked becomes a tuple of it, passed alike).

        Args:
            rows: the sample indices (a ``LongTensor`` or a boolean mask) or a slice.
        """
        n = len(self)
        fargs = ForwardArgs(self.additional_forward_args, n)

        def take(t: Tensor) -> Tensor:
            return t[rows] if t.dim() > 0 and t.shape[0] == n else t

        def take_argument(t: Tensor) -> Tensor:
            return t[rows] if fargs._per_sample(t) else t

        inputs = map_tensors(self.inputs, take)
        first = inputs[0] if isinstance(inputs, tuple) else inputs
        args = mark_whole(map_tensors(self.additional_forward_args, take_argument), fargs.whole_positions(first.shape[0]))
        return Probe(inputs, map_tensors(self.labels, take), args)


def dry_rows(probe: Probe) -> slice | Tensor:
    """The 2 probe samples of a dry run (:meth:`Audit.dry_run`): the first two, or the first and the
    first multi-hot row where the labels are multi-hot and the first two rows are not, or the first and the first
    row holding a float label beyond [0, 1] where the first two hold none (a survival model's ``(time, event)``
    ``[N, 2]`` whose first two times are below 1: a regression target on the probe, zeros, ones and fractions on those
    two rows, which the label checks would read as classes).

    Args:
        probe: the probe: the fixed samples the audit explains, with their labels and forward arguments.

    Examples:
        >>> y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> dry_rows(Probe(torch.zeros(3, 2), y)), dry_rows(Probe(torch.zeros(3, 2), y[[0, 1, 0]]))
        (tensor([0, 2]), slice(0, 2, None))
        >>> dry_rows(Probe(torch.zeros(3, 2), torch.tensor([[0.3, 1.0], [0.2, 0.0], [4.1, 1.0]])))  # (time, event)
        tensor([0, 2])
    """
    labels = probe.labels
    first = slice(0, 2)
    if not isinstance(labels, Tensor) or not labels.is_floating_point() or labels.dim() not in (1, 2) or len(probe) <= 2:
        return first
    lab = labels.detach()
    beyond = ((lab < 0) | (lab > 1)).reshape(len(lab), -1).any(1)  # a regression's value (a time, a count): the probe's
    if not bool(beyond[:2].any()) and bool(beyond.any()):  # labels are no classes where the first two rows look like some
        return torch.stack([torch.zeros((), dtype=torch.long, device=lab.device), beyond.nonzero()[0, 0]])
    if labels.dim() != 2:
        return first
    if labels.shape[1] < 2 or not bool(((lab == 0) | (lab == 1)).all()):
        return first
    several = (lab.sum(1) != 1).nonzero().flatten()
    if several.numel() == 0 or int(several[0]) < 2:
        return first
    return torch.tensor([0, int(several[0])], device=labels.device)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Tensor):
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16 or value.dtype == torch.float16:
            value = value.float()
        return _jsonable(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # NaN/inf are reported, not hidden
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist) and getattr(value, "ndim", 0):  # numpy arrays
        return _jsonable(value.tolist())
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value


@dataclass
class AuditResult:
    """Plain data produced by one audit run.

    Every field lands in the JSON report; what else the callback does with each is said below
    (docs/recipes.md, "Writing your own audit"). The callback checks the types at the dry run
    (:func:`~lightning_causal.callbacks._result_checks.checked_result`).

    Attributes:
        audit: the audit's name, ``Audit.name`` (``AuditResult(self.name, ...)``; tags ``causal/<audit>/<metric>``).
        scalars: metric name -> float (or a one-element tensor of any shape, written to the report as its number; a
            bool, ``True``/``torch.tensor(True)``, is the number 1.0/0.0, in the report as in the loggers):
            logged to every logger and ``callback_metrics``
            (monitored by ``AuditEarlyStopping``/``AuditModelCheckpoint``) and charted in the custom-scalars layout.
        vectors: name -> 1-D tensor: logged as histograms and compared with the previous audit's vector of the
            same name and length for drift (``drift/<name>/{spearman,topk_jaccard,shift}``; with its entries named in
            ``meta["vector_entries"]``, ``{name: [entry, ...]}``, only where they are the same ones; where the length or
            the named entries changed, the callback adds a note and ``meta["resized_vectors"]`` or
            ``meta["changed_entries"]`` instead); a vector of name
            ``importance/<layer>`` is drawn as bars of units.
        maps: name -> per-sample attribution maps shaped like the input (``[N, ...]``), drawn by kind of data.
        images: name -> images ``[N, C, H, W]`` or ``[C, H, W]`` shown as they are.
        graphs: name -> JSON-able graph dicts; ``CausalGraph.to_dict()`` and ``LayerCausalMap.to_dict()`` are drawn,
            a graph of another form is kept in the report only.
        tables: name -> list of rows (dicts): the text card lists the first rows of each (sort them, most important
            first); a table whose rows hold a number ``m`` beside its interval ``m_ci`` (``[low, high]``) is drawn as interval bars.
        curves: name -> {"x": [...], series: [...]} plotted as line figures; a series given as one
            number instead of a list is a reference level (a rule's bound), drawn dashed.
        meta: anything JSON-able describing the run (epoch, seconds, settings).

    Examples:
        >>> import torch
        >>> result = AuditResult("toy", scalars={"effect": 0.5}, vectors={"importance/fc": torch.tensor([1.0, 0.0])})
        >>> d = result.to_dict()
        >>> d["audit"], d["scalars"], d["vectors"]
        ('toy', {'effect': 0.5}, {'importance/fc': [1.0, 0.0]})
    """

    audit: str
    scalars: dict[str, float] = field(default_factory=dict)
    vectors: dict[str, Tensor] = field(default_factory=dict)
    maps: dict[str, Tensor] = field(default_factory=dict)
    images: dict[str, Tensor] = field(default_factory=dict)
    graphs: dict[str, dict] = field(default_factory=dict)
    tables: dict[str, list[dict]] = field(default_factory=dict)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def non_finite(self) -> list[str]:
        """Names of scalars, vectors and maps that hold NaN or infinity."""
        bad = [k for k, v in self.scalars.items() if not math.isfinite(float(v))]
        for group in (self.vectors, self.maps):
            bad += [k for k, v in group.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        return bad

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dictionary with a ``schema_version``.

        Examples:
            >>> r = AuditResult("demo", scalars={"a": 1.0}, vectors={"v": torch.tensor([1.0, 2.0])})
            >>> d = r.to_dict()
            >>> d["schema_version"], d["scalars"]["a"], d["vectors"]["v"]
            (1, 1.0, [1.0, 2.0])
        """
        return {
            "schema_version": SCHEMA_VERSION,
            "audit": self.audit,
            "scalars": {str(k): _scalar(v) for k, v in self.scalars.items()},
            "vectors": _jsonable(self.vectors),
            "maps": _jsonable(self.maps),
            "images": {k: list(v.shape) for k, v in self.images.items()},
            "graphs": _jsonable(self.graphs),
            "tables": _jsonable(self.tables),
            "curves": _jsonable(self.curves),
            "meta": _jsonable(self.meta),
        }


    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditResult:
        """The result that :meth:`to_dict` wrote, or an audit's entry of a report read by
        :func:`~lightning_causal.reporting.json_report.load_report`: vectors and maps as float64 tensors
        (every float32 value exactly), ``"nan"``/``"inf"``/``"-inf"`` there and in ``scalars`` as floats, the
        rest as written. ``to_dict()`` of it equals ``data`` but for ``images``, of which ``to_dict`` keeps
        the shapes only: they come back empty.

        Args:
            data: ``to_dict()``'s output, or ``load_report(path)["audits"][name]``.

        Raises:
            ValueError: ``data`` has no ``"audit"`` name, or another ``schema_version``.

        Examples:
            >>> r = AuditResult.from_dict(AuditResult("demo", vectors={"v": torch.tensor([1.0, float("nan")])}).to_dict())
            >>> r.audit, r.vectors["v"]
            ('demo', tensor([1., nan], dtype=torch.float64))
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("audit"), str):
            raise ValueError(f"Expected argument `data` to be a mapping with an 'audit' name, as to_dict writes, but got {data!r:.80}")
        if data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise ValueError(f"Expected argument `data` of schema_version {SCHEMA_VERSION} but got {data['schema_version']!r}")

        def tensor(values: Any) -> Tensor:
            values = _floats(values)
            t = torch.tensor(values)
            return torch.tensor(values, dtype=torch.float64) if t.is_floating_point() else t

        return cls(
            data["audit"], scalars={k: float(v) for k, v in data.get("scalars", {}).items()},
            vectors={k: tensor(v) for k, v in data.get("vectors", {}).items()},
            maps={k: tensor(v) for k, v in data.get("maps", {}).items()},
            graphs=dict(data.get("graphs", {})), tables=dict(data.get("tables", {})), curves=dict(data.get("curves", {})),
            meta=dict(data.get("meta", {})),
        )


def _number(value: Any) -> Any:
    """A scalar as the number it holds: a one-element tensor of any shape (``tensor([0.5])``, which ``tolist`` would
    write as the list ``[0.5]``) as its ``item()``; anything else as it is."""
    return value.item() if isinstance(value, Tensor) and value.numel() == 1 else value


def _scalar(value: Any) -> Any:
    """A scalar as the JSON number the loggers log (``float(value)``): a bool (Python's, NumPy's or a bool tensor's, which
    ``json`` would write as ``true`` and :meth:`AuditResult.from_dict` read back as 1.0) as 1.0 or 0.0; NaN and infinities
    as their strings; other numbers as they are."""
    value = _jsonable(_number(value))
    return float(value) if isinstance(value, bool) else value


def _floats(values: Any) -> Any:
    """Nested lists with the strings ``to_dict`` writes for NaN and infinities as floats."""
    if isinstance(values, list):
        return [_floats(v) for v in values]
    return float(values) if isinstance(values, str) else values


def check_layer_rows(model: nn.Module, probe: Probe, layers: Sequence[str], additional_forward_args: Any = None, *,
                     shared_ok: bool = False) -> None:
    """Refuse a layer of ``layers`` that returns fewer rows than the probe's samples in one pass of the whole probe (eval
    mode, leaving no trace): an expert of a mixture, run on the rows routed to it, which the dry run's 2 samples may all
    reach (:func:`~lightning_causal.causal.engine.unit_sites.check_rows_at_sites`); run by the ``validate`` of the audits
    that take layers at the callback's set-up, so that the fit stops before training, not at the first audit.

    Args:
        model: the model under audit.
        probe: the probe.
        layers: the layers (module names, or ``"<module>:input"``).
        additional_forward_args: the audit's forward arguments; the probe's where ``None``.
        shared_ok: accept a layer whose rows every sample shares (the same rows for two samples alone and together:
            a zero-shot classifier's text tower over its class prompts, fewer rows than a probe of more samples),
            which ``unit_effects`` measures (:mod:`~lightning_causal.causal.effects.shared_units`); asked only where
            a layer is refused, and refused where the whole probe's pass gives it other rows than the two samples (rows
            that depend on the batch's samples, :func:`~lightning_causal.causal.effects.shared_units.check_rows_shared`).

    Raises:
        ValueError: naming the layer, the rows it returned and where to look instead.

    Examples:
        >>> check_layer_rows(nn.Sequential(nn.Linear(3, 2)), Probe(torch.ones(4, 3)), ["0"])
    """
    if additional_forward_args is None:
        additional_forward_args = probe.additional_forward_args
    inputs = as_tuple(probe.inputs)
    forward = Forward(model, num_samples=len(probe), additional_forward_args=additional_forward_args)
    with audit_mode(model):
        try:
            check_rows_at_sites(model, layers, lambda: forward.raw(*inputs), len(probe))
        except ValueError:
            if not shared_ok:
                raise
            shared = {layer: rows for layer in layers  # rows every sample shares are the estimators' to measure
                      if (rows := shared_rows(layer, lambda xi, r: forward(*xi, rows=r), model, inputs)) is not None}
            if not shared:
                raise
            check_rows_at_sites(model, [layer for layer in layers if layer not in shared], lambda: forward.raw(*inputs),
                                len(probe))
            with torch.no_grad(), capture(model, list(shared), warn_repeats=False) as seen:  # the same in the probe's pass
                forward.raw(*inputs)
            for layer, rows in shared.items():
                check_rows_shared(layer, rows, seen[layer], f"the whole probe ({len(probe)} samples)")


def layer_names(layers: str | Sequence[str], allow_empty: bool = False) -> list[str]:
    """Validate module names given as one string or a sequence; return them as a list.

    Args:
        layers: one module name, or a sequence of them (non-empty strings).
        allow_empty: accept an empty sequence.

    Examples:
        >>> layer_names("conv1"), layer_names(["conv1", "fc1"])
        (['conv1'], ['conv1', 'fc1'])
    """
    names = [layers] if isinstance(layers, str) else layers
    if not isinstance(names, Sequence) or (not names and not allow_empty) or not all(isinstance(n, str) and n for n in names):
        kind = "a list" if allow_empty else "a non-empty list"
        raise ValueError(f"Expected argument `layers` to be {kind} of module names but got {layers!r}")
    return list(names)


def whole_model(model: nn.Module) -> dict | None:
    """The deepest module holding every parameter of ``model``, below it (``self.net`` of a LightningModule, and
    ``self.net.body`` where ``net`` holds one ``body``), and ``model``'s class: a figure's title names the class where its
    labels leave that path out (:func:`~lightning_causal.reporting.figure_style.left_out_prefix`), as ``net`` tells a
    user nothing; ``None`` where no child holds them all (a CLIP model's towers, parameters of the model's own). Where
    ``model`` is a wrapper (:data:`_WRAPPERS`: an ``nn.Sequential`` an ``audited_module`` returns, ``torch.compile``'s
    ``OptimizedModule``, ``CausalRepairModule``, ``LightningClassifier``), the class of the first module below it that is
    none.

    Args:
        model: the audited model.

    Examples:
        >>> class Forecaster(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.net, self.loss = nn.Sequential(nn.Linear(2, 2)), nn.MSELoss()
        >>> whole_model(Forecaster()), whole_model(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1)))
        ({'path': 'net.0', 'class': 'Forecaster'}, None)
    """
    path, module, chain = [], model, [model]
    while True:
        total = sum(p.numel() for p in module.parameters())
        holders = [(name, child) for name, child in module.named_children() if total and sum(p.numel() for p in child.parameters()) == total]
        if len(holders) != 1:
            break
        path.append(holders[0][0])
        module = holders[0][1]
        chain.append(module)
    named = next((m for m in chain if type(m).__name__ not in _WRAPPERS), model)  # a wrapper's class names no model
    path = user_name(".".join(path))  # a compiled model's `_orig_mod` dropped, as its layers are named
    return {"path": path, "class": type(named).__name__} if path else None


_WRAPPERS = frozenset({"Sequential", "ModuleList", "ModuleDict", "OptimizedModule", "DataParallel",
                       "DistributedDataParallel", "CausalRepairModule", "LightningClassifier"})
"""Classes :func:`whole_model` looks through for the model they hold: containers, ``torch.compile``'s, data-parallel
wrappers, :class:`~lightning_causal.repair.CausalRepairModule`, the package's own ``LightningClassifier`` (the demo's
``LightningClassifier(DigitsCNN())`` is named ``DigitsCNN``)."""


def default_name(class_name: str, suffix: str = "audit") -> str:
    """An audit's default name: its class name in snake case, an acronym one word, less a leading underscore and a
    trailing ``Audit`` (a name letter by letter, ``s_h_a_p``, made tags nobody would write); a repair term's, less
    ``Term`` (``suffix="term"``).

    Args:
        class_name: the audit's class name.
        suffix: the trailing word left out, in lower case.

    Examples:
        >>> default_name("InputEffectAudit"), default_name("SHAPAudit"), default_name("MyCAVAudit"), default_name("_LensAudit")
        ('input_effect', 'shap', 'my_cav', 'lens')
    """
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", class_name.lstrip("_")).lower()
    return snake.removesuffix(f"_{suffix}") or snake


class Audit(ABC):
    """Base class of the audits run by :class:`~lightning_causal.callbacks.CausalAuditCallback`.

    Subclasses implement :meth:`run` and, when they can check their configuration against the
    model before training starts (layer names, probe shape), :meth:`validate`. Before training,
    the callback also runs :meth:`dry_run` (by default :meth:`run` on 2 probe samples), so that
    every misconfiguration fails at set-up, not after the first epochs. A subclass's :meth:`run` called directly warns,
    as the callback's audit epochs do (one judge, :func:`~lightning_causal.audits.logit_reads.judge_outputs`), where the
    output it explains reads as energies (lower = likelier, on a probe with labels) or 0/1 prediction sets, which the
    package's audits read as logits, or as a flow's latent or log-likelihood read as classes
    (:func:`~lightning_causal.audits.logit_reads.judged_run`: one pass after the run, once per run).

    Args:
        name: tag used in logs (``causal/<name>/...``); defaults to the class name in snake case less ``Audit``
            (:func:`default_name`: ``SHAPAudit`` is ``shap``).
        output: which tensor of the model's return value is explained (``None``: a tensor,
            ``.logits`` or ``["logits"]``; a key, an index or a callable ``out -> Tensor``).

    Attributes:
        takes_every_input: whether the audit explains a probe of several inputs (``((x1, x2), y)``) as it is, over
            every input (``UnitImportanceAudit``, ``CausalGraphAudit``). ``False`` (the default): it explains one
            input tensor, and ``CausalAuditCallback(explain=k)`` gives it input ``k`` alone, the others passed
            along as per-sample forward arguments.
        whole_probe_rows_check: whether :meth:`dry_run` checks on the probe that the model treats its samples
            independently (two samples run alone give their outputs in the probe's batch), as the audit's :meth:`run`
            checks on the probe it is given (``FairnessAudit``, ``CounterfactualAudit``, ``BackdoorAudit``): the dry
            run's 2 samples are too few to compare, so a model whose output for a sample depends on the other samples
            of its batch (attention across the batch, scores normalised over it) is refused before training. The check
            runs the samples the run's first pass holds, no more: ``BackdoorAudit``'s first ``max_samples``,
            ``FairnessAudit``'s first chunk of the memory budget (``rows_per_pass``), ``CounterfactualAudit``'s whole
            probe (a probe whose forward arguments link its samples: the whole probe).

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> class MeanLogit(Audit):
        ...     def run(self, model, probe, *, max_batch_size=None):
        ...         with torch.no_grad():
        ...             return AuditResult(self.name, scalars={"mean_logit": model(probe.inputs).mean().item()})
        >>> model = nn.Linear(3, 1)
        >>> _ = nn.init.ones_(model.weight), nn.init.zeros_(model.bias)
        >>> audit = MeanLogit()
        >>> audit.name, audit.run(model, Probe(torch.ones(4, 3))).scalars
        ('mean_logit', {'mean_logit': 3.0})
    """

    takes_every_input: ClassVar[bool] = False
    whole_probe_rows_check: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "run" in cls.__dict__:  # a direct run warns of energies or 0/1 sets read as logits, as the callback does
            cls.run = judged_run(cls.__dict__["run"])  # type: ignore[method-assign]

    def __init__(self, name: str | None = None, *, output: OutputSpec = None) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"Expected argument `name` to be a non-empty string but got {name!r}")
        self.name = name or default_name(type(self).__name__)
        self.output = check_output_spec(output, ValueError)

    def model_options(self, probe: Probe) -> dict[str, Any]:
        """Keyword arguments for the core's estimators: ``output`` and the probe's forward arguments.

        Args:
            probe: the probe: the fixed samples the audit explains, with their labels and forward
                arguments.
        """
        return {"output": self.output, **probe.forward_options}

    def dry_run(self, model: nn.Module, probe: Probe) -> AuditResult | None:
        """Run the audit on (at most) 2 probe samples, so that misconfigurations raise before
        training. Audits whose full run is costly override this with a cheaper configuration.
        Returns the result (its scalar names let monitors check their tag before training), or
        ``None``. Warnings about what the 2 samples hold (too few rows to compare layers by, one
        sample a class, repeated samples, constant groups, both equal to the baseline, layers they do not
        move, a gradient 0 at both, a class flagged among two by Neural Cleanse or predicted for both), of category :class:`~lightning_causal.causal.engine.probe_warnings.ProbeContentsWarning`,
        are left to the audits of the whole probe (or checked on the whole probe by an override:
        ``SobolAudit``'s correlation and one-hot blocks, ``CausalGraphAudit``'s spread).

        A probe whose forward arguments may link its samples (a graph's ``edge_index`` over the rows,
        :func:`~lightning_causal.causal.engine.linked_samples.linked_arguments`) is first checked on
        the whole probe (two samples run alone give their outputs in the batch): 2 samples cut from
        the nodes of one graph would otherwise fail on the cut graph, or run on it; so is every probe of an audit
        whose ``whole_probe_rows_check`` is set (the samples of the probe must be independent rows), on the samples the
        run's first pass holds (as that attribute says).

        The 2 samples are the first two, unless the probe's labels are multi-hot (zeros and ones
        ``[N, C]`` with some row not one-hot) and those two are one-hot: then the first and the first
        multi-hot row, so that the dry run reads the labels as the full run does
        (:func:`~lightning_causal.audits.options.multi_hot_labels` of a model that does not say its task); and
        where the float labels hold a value beyond [0, 1] but the first two rows none, the first and the first
        such row (:func:`dry_rows`: a regression target, a survival model's ``(time, event)``, not classes).

        Args:
            model: the model under audit, any ``nn.Module`` (the callback passes the ``LightningModule``, or
                what its ``audited_module`` returns).
            probe: the probe: the fixed samples the audit explains, with their labels and forward
                arguments.
        """
        with audit_mode(model):
            checked = probe
            if self.whole_probe_rows_check:  # on the samples the run's first pass holds, not more (a graph's: all)
                k = self._rows_of_first_pass(model, probe)
                forward = Forward(model, num_samples=len(probe), **self.model_options(probe))
                if k < len(probe) and not linked_arguments(forward.args, model=forward.model, num_inputs=len(as_tuple(probe.inputs))):
                    checked = probe.subset(torch.arange(max(k, 2), device=probe.first.device))
            check_linked_samples(model, as_tuple(checked.inputs), f"Audit {self.name!r}",
                                 independent=self.whole_probe_rows_check, **self.model_options(checked))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ProbeContentsWarning)  # of the 2 samples: said by the full runs, of the probe
            return self.run(model, probe.subset(dry_rows(probe)))

    def _rows_of_first_pass(self, model: nn.Module, probe: Probe) -> int:
        """How many of the probe's first samples the run's first pass holds in one batch: :meth:`dry_run`'s check of an
        audit whose ``whole_probe_rows_check`` is set runs them, no more (the whole probe by default)."""
        return len(probe)

    def validate(self, model: nn.Module, probe: Probe) -> None:  # noqa: B027 - optional hook
        """Check the configuration against ``model`` and ``probe``; raise ``ValueError`` if bad.

        Args:
            model: the model under audit, any ``nn.Module`` (the callback passes the ``LightningModule``, or
                what its ``audited_module`` returns).
            probe: the probe: the fixed samples the audit explains, with their labels and forward
                arguments.
        """

    @abstractmethod
    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        """Explain ``model`` on ``probe`` and return plain data.

        Args:
            model: the model under audit, any ``nn.Module`` (the callback passes the ``LightningModule``, or
                what its ``audited_module`` returns).
            probe: the probe: the fixed samples the audit explains, with their labels and forward
                arguments.
            max_batch_size: rows per forward pass of the estimators; ``None``: chosen from the memory
                budget.
        """

    def state_dict(self) -> dict[str, Any]:
        """What the audit carries from one run to the next (e.g. the previous graph), as plain
        values and tensors; the callback stores it in checkpoints (loadable with
        ``torch.load(weights_only=True)``). Stateless audits return ``{}``."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what :meth:`state_dict` returned (on resume from a checkpoint). The callback also calls it with
        ``{}`` at the start of every fit, to reset the audit (a callback used for a second fit starts fresh): read
        missing keys as the state of an audit that has not run (``state.get("previous")``).

        Args:
            state: the dict :meth:`state_dict` returned.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
