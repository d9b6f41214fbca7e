"""The repair-term protocol used by :class:`~lightning_causal.repair.CausalRepairModule`."""

from __future__ import annotations

import math
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from lightning_causal.audits.base import default_name
from lightning_causal.audits.label_task import label_task, task_model
from lightning_causal.causal.engine.forward import (
    ForwardArgs,
    OutputSpec,
    check_output_spec,
    select_output,
)
from lightning_causal.causal.engine.output_selection import check_not_a_loss, check_not_a_row
from lightning_causal.causal.engine.state import check_logits

__all__ = ["RepairTerm", "SEVERAL_INPUTS_FIX"]

#: The way out for a model of several inputs, ``model(image, tab)``, whose terms act on one input tensor.
SEVERAL_INPUTS_FIX = (
    "pass CausalRepairModule `explain=`, the input the terms act on (its position in the inputs tuple or forward's "
    "parameter name, `explain='tab'`: the other inputs follow their rows), or "
    "give the input the terms act on (the table holding the sensitive column, the image a trigger is stamped on) as "
    "the inputs and the others as forward "
    "arguments, `unpack_batch=lambda batch: (batch['tab'], batch['y'], {'image': batch['image']})`, with a model "
    "whose forward takes that input first (`forward(self, tab, image)`; a wrapper module can reorder): they follow "
    "their rows into the counterfactual pass"
)
#: Where a term keeps the task a repair module handed it (:meth:`RepairTerm.take_task`) and the tasks
#: :meth:`RepairTerm.task_of` read per model: names of the package's own, which a term of one's own does not use for
#: its own attributes (a ``self._task`` of its own, such as its penalty's kind, is left alone).
_HANDED_TASK, _TASKS_READ = "_repair_handed_task", "_repair_tasks_read"


class RepairTerm(ABC):
    """A differentiable penalty added to the task loss during fine-tuning.

    ``training_step`` computes ``task_loss + sum_i weight_i(epoch) * term_i.loss(model, x, y)``
    (with ``additional_forward_args=`` when the batch carries forward arguments).

    Args:
        weight: a finite non-negative constant, or a callable of the current epoch (e.g. a warm-up
            schedule).
        name: tag used in logs (``repair/<name>``); defaults to the class name in snake case less ``Term``
            (:func:`~lightning_causal.audits.base.default_name`: ``MMDTerm`` is ``mmd``).
        output: which tensor of the model's return value the term compares (``None``: a tensor,
            ``.logits`` or ``["logits"]``; a key, an index or a callable).

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> class WeightDecay(RepairTerm):
        ...     def loss(self, model, x, y):
        ...         return sum(p.pow(2).sum() for p in model.parameters())
        >>> model = nn.Linear(3, 1)
        >>> _ = nn.init.ones_(model.weight), nn.init.zeros_(model.bias)
        >>> term = WeightDecay(weight=0.1)
        >>> term.name, term.loss(model, torch.zeros(2, 3), None).item()
        ('weight_decay', 3.0)
    """

    def __init__(self, weight: float | Callable[[int], float] = 1.0, name: str | None = None, *,
                 output: OutputSpec = None) -> None:
        if not callable(weight):
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
                raise ValueError(
                    f"Expected argument `weight` to be a finite non-negative number or a callable of the epoch but got {weight!r}"
                )
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"Expected argument `name` to be a non-empty string but got {name!r}")
        self.weight = weight
        self.name = name or default_name(type(self).__name__, "term")
        self.output = check_output_spec(output, ValueError)

    def weight_at(self, epoch: int) -> float:
        """The term's weight at ``epoch``.

        Args:
            epoch: the current epoch (0-based).
        """
        value = self.weight(epoch) if callable(self.weight) else self.weight
        try:
            w = float(value)
        except (TypeError, ValueError) as err:  # e.g. None from a schedule `{0: 0.0, 5: 1.0}.get(epoch)`
            raise ValueError(
                f"Expected the weight of term `{self.name}` at epoch {epoch} to be a finite number >= 0 but its schedule "
                f"returned {value!r}; the callable must give a number for every epoch") from err
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"Expected the weight of term `{self.name}` at epoch {epoch} to be finite and >= 0 but got {w}")
        return w

    def outputs(self, model: nn.Module, x: Tensor, additional_forward_args: Any = None) -> Tensor:
        """``model``'s selected output (``output=``) on ``x`` with the batch's forward arguments.

        Args:
            model: the network being fine-tuned.
            x: the batch's inputs ``[N, ...]`` (or a tuple of them).
            additional_forward_args: the batch's forward arguments (tuple: positional; Mapping:
                keywords); ``None``: none.
        """
        return self._raw_and_outputs(model, x, additional_forward_args)[1]

    def _raw_and_outputs(self, model: nn.Module, x: Tensor, additional_forward_args: Any = None) -> tuple[Any, Tensor]:
        """:meth:`outputs` with the model's return value it selects from (a distribution a term's checks read)."""
        fargs = ForwardArgs(additional_forward_args)
        raw = model(x, *fargs.args, **fargs.kwargs)
        picked = select_output(raw, self.output)
        rows = (x if isinstance(x, Tensor) else x[0]).shape[0]
        check_not_a_row(raw, picked, self.output, rows)
        try:
            check_not_a_loss(raw, picked, self.output, rows)
        except ValueError as err:  # the module's output= (the task loss's tensor), taken by a term without one of its own
            raise ValueError(f"{type(self).__name__} {self.name!r}: {err}; a term compares a score per sample: give it "
                             "an `output=` of its own that selects them (CausalRepairModule's `output=` is taken by each "
                             "term without one)") from err
        return raw, picked

    def checked_logits(self, outputs: Tensor) -> Tensor:
        """``outputs`` as given; on the term's first call (of a batch of 4 rows or more, which an evidential head's
        concentrations are told on) they are checked to be logits, not
        probabilities (:func:`~lightning_causal.causal.engine.state.check_logits`). Once is
        enough (a model does not start returning probabilities mid-training), and the check
        reduces the batch and reads the answer on the host: a synchronisation every training
        step on a GPU.

        Args:
            outputs: the model's outputs ``[N, C]``.
        """
        # False: not checked; "few": checked on fewer than 4 rows, which tell no evidential head's concentrations from
        # logits, so checked again on the first batch of 4 rows or more (never every step of a fit in batches of 2)
        checked = getattr(self, "_logits_checked", False)
        few = isinstance(outputs, Tensor) and outputs.dim() == 2 and outputs.shape[0] < 4
        if checked is not True and not (few and checked == "few"):
            check_logits(outputs, type(self).__name__)
            self._logits_checked = "few" if few else True
        return outputs

    def take_task(self, model: nn.Module) -> None:
        """Read what ``model`` says of its task, :func:`~lightning_causal.audits.label_task.label_task` of the output the
        term compares (``task_model(model, self.output)``: a head chosen by key or index says nothing unless the model
        declares its task per output), and read the batches' labels by it from then on (:meth:`task_of`), whatever
        model :meth:`loss` is given. :class:`~lightning_causal.repair.CausalRepairModule` hands its network's task to
        each of its terms this way when it is built, copied (``deepcopy``, a pickle) and when a fit starts, after it
        states its task loss's task for the network (``task_loss=nn.CrossEntropyLoss()``: ``"multiclass"``;
        :func:`~lightning_causal.audits.label_task.state_task`), so that of two repair modules around one network the
        one fitted says it. One walk of the model's modules, not one a step.

        Args:
            model: the network the term repairs.

        Examples:
            >>> class Zero(RepairTerm):
            ...     def loss(self, model, x, y):
            ...         return x.sum() * 0
            >>> term, net = Zero(), nn.Linear(3, 2)
            >>> term.task_of(net) is None
            True
            >>> net.hparams = {"task": "multilabel"}
            >>> term.take_task(net); term.task_of(nn.Linear(3, 2))
            'multilabel'
        """
        # under a name of the package's own: a term of one's own may keep a `_task` of its own (its penalty's kind)
        self.__dict__[_HANDED_TASK] = (label_task(task_model(model, getattr(self, "output", None))),)

    def task_of(self, model: nn.Module | None) -> str | None:
        """The task by which the term reads the batch's labels (``"multiclass"``, ``"multilabel"``, ``"regression"`` or
        ``None``: nothing said): the one :meth:`take_task` took (the repair module's hand-over), else what ``model``
        says (:func:`~lightning_causal.audits.label_task.label_task` of the output the term compares), read once per
        model: a term used alone, ``term.loss(model, x, y)``. ``None`` for ``model=None`` without a hand-over.

        Args:
            model: the model the term's loss is given, or ``None`` (outputs without their model: the fused pass).
        """
        handed = self.__dict__.get(_HANDED_TASK)
        if handed is not None:
            return handed[0]
        if model is None:
            return None
        tasks = self.__dict__.setdefault(_TASKS_READ, weakref.WeakKeyDictionary())  # by weak reference: not copied
        if model not in tasks:
            tasks[model] = label_task(task_model(model, getattr(self, "output", None)))
        return tasks[model]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled and copied without the tasks :meth:`task_of` read per model (weak references; read again on use)."""
        state = self.__dict__.copy()
        state.pop(_TASKS_READ, None)
        return state

    @property
    def makes_own_rows(self) -> bool:
        """Whether the term's loss needs the batch's inputs as rows of their own: it makes rows (stamped or augmented
        copies) that no other input and no per-sample forward argument of the batch can follow. Such a term is
        refused beside other inputs (:class:`~lightning_causal.repair.CausalRepairModule` ``explain=``, batches of
        several inputs) and beside forward arguments of the batch (``unpack_batch``'s third part). Default ``False``;
        :class:`~lightning_causal.repair.backdoor.BackdoorSuppressionTerm`: ``True``; a term of one's own whose loss
        makes rows of its own says ``True`` too (a property, or the class attribute ``makes_own_rows = True``)."""
        return False

    def setup(self, model: nn.Module, train_inputs: Tensor | None = None) -> None:  # noqa: B027
        """Prepare before fine-tuning starts (e.g. reverse-engineer a trigger from ``train_inputs``).

        Args:
            model: the network being fine-tuned.
            train_inputs: training inputs ``[N, ...]`` for terms that need data before fine-tuning;
                ``None``: none.
        """

    @property
    def needs_train_inputs(self) -> bool:
        """Whether :meth:`setup` reads ``train_inputs`` (default: when a subclass overrides
        ``setup``). :class:`~lightning_causal.repair.CausalRepairModule` reads training inputs
        only for terms that need them."""
        return type(self).setup is not RepairTerm.setup

    def state_dict(self) -> dict[str, Any] | None:
        """What :meth:`setup` prepared, as plain values (tensors, numbers, strings, lists, dicts),
        saved in the checkpoints of a :class:`~lightning_causal.repair.CausalRepairModule` fit.
        ``None`` (default): nothing is saved and ``setup`` runs again when a fit resumes."""
        return None

    def _non_finite_note(self, value: Tensor) -> str:
        """What :func:`~lightning_causal.repair.objective.add_terms`' ``FloatingPointError`` adds where this term's
        ``value`` is not finite (read on the failing step only): the cause where the term knows it, else ``""``."""
        return ""

    def load_state_dict(self, state: dict[str, Any], model: nn.Module) -> None:
        """Restore :meth:`state_dict`'s output in place of :meth:`setup` (a resumed fit).

        Args:
            state: what ``state_dict`` returned.
            model: the model being repaired, on its device, at the checkpoint's weights (to
                rebuild copies of it, e.g. a frozen reference).

        Raises:
            NotImplementedError: a term that returns a ``state_dict`` must implement this too.
        """
        raise NotImplementedError(f"{type(self).__name__} returns a `state_dict` but does not implement `load_state_dict`")

    @abstractmethod
    def loss(self, model: nn.Module, x: Tensor, y: Tensor | None) -> Tensor:
        """Scalar, differentiable penalty on the batch ``(x, y)`` for ``model``. Terms that support
        batches with forward arguments (attention masks) also take ``additional_forward_args=``
        (keyword); on such a batch a term whose ``loss`` does not is refused, naming it.

        Args:
            model: the network being fine-tuned.
            x: the batch's inputs ``[N, ...]``.
            y: the batch's labels, or ``None`` for an unlabelled batch.
        """

