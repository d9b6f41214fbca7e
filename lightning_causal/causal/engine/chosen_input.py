"""A model of several inputs seen as a model of its ``k``-th input: :class:`ChosenInput` and :func:`chosen_input`.

The estimators and audits that draw or perturb one input tensor call ``model(x, *args, **kwargs)``: the
explained input is ``forward``'s first parameter. For ``forward(self, image, tab)``, explaining ``tab``
means calling ``model(image, tab)`` with ``tab`` varied and ``image`` following each row. :func:`chosen_input`
gives the model and the inputs in that shape: ``ChosenInput(model, 1, 2)`` is called
``(tab, image)`` and calls ``model(image, tab)``, the other inputs passed as forward arguments, which the row
engine gathers with the rows of their samples (:class:`~lightning_causal.causal.engine.forward_args.ForwardArgs`).

The wrapper is invisible to module names: its ``named_modules()``, ``named_children()``, ``get_submodule()``,
parameters and buffers are the model's own (``"encoder.0"``, not ``"model.encoder.0"``), so that hooks land on
the model's modules; ``train()``/``eval()`` and ``training`` are the model's (its own flag), and public
attributes it lacks are read from the model (a loss module it holds, a declared task).

Examples:
    >>> import torch
    >>> from torch import nn
    >>> class ImageTab(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.tab = nn.Linear(3, 1)
    ...     def forward(self, image, tab):
    ...         return image.flatten(1).sum(1, keepdim=True) + self.tab(tab)
    >>> model = ImageTab()
    >>> image, tab = torch.ones(2, 1, 2, 2), torch.zeros(2, 3)
    >>> wrapper, x, args = chosen_input(model, (image, tab), 1)
    >>> x is tab, [n for n, _ in wrapper.named_modules()]
    (True, ['', 'tab'])
    >>> torch.equal(wrapper(x, *args), model(image, tab))
    True
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import Any

from torch import Tensor, nn

from lightning_causal.causal.engine.eager import eager_module
from lightning_causal.causal.engine.forward_args import marks_kept, tensor_leaves

__all__ = ["FORWARDS_TO", "ChosenInput", "check_input_choice", "chosen_input", "has_default", "input_position", "model_call",
           "model_keywords", "model_name", "other_input_key", "positional_names"]


def other_input_key(position: int) -> str:
    """The keyword that carries input ``position`` of the model to :class:`ChosenInput` where the forward
    arguments are keywords (a mapping): ``"_input_<position>"``.

    Args:
        position: the input's position among ``forward``'s inputs.
    """
    return f"_input_{position}"


class ChosenInput(nn.Module):
    """``model`` called with its input ``position`` first: ``ChosenInput(model, k, n)(x_k, *others, *args, **kwargs)``
    is ``model(x_0, ..., x_{n-1}, *args, **kwargs)``, where ``others`` are the ``n - 1`` other inputs in their
    order; with ``keywords=True`` they come as the keywords :func:`other_input_key` instead (beside forward
    arguments that are keywords).

    Args:
        model: the model of ``num_inputs`` positional inputs.
        position: the input explained, ``0 <= position < num_inputs``.
        num_inputs: the number of positional inputs, at least 2.
        keywords: whether the other inputs arrive as keywords (see above).

    Raises:
        TypeError: ``model`` is no ``nn.Module``.
        ValueError: ``position`` or ``num_inputs`` out of range.
    """

    def __init__(self, model: nn.Module, position: int, num_inputs: int, *, keywords: bool = False) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"Expected argument `model` to be a torch.nn.Module but got {type(model).__name__}")
        if isinstance(num_inputs, bool) or not isinstance(num_inputs, int) or num_inputs < 2:
            raise ValueError(f"Expected argument `num_inputs` to be an int >= 2 but got {num_inputs!r}")
        if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < num_inputs:
            raise ValueError(f"Expected argument `position` to be an int from 0 to {num_inputs - 1} but got {position!r}")
        super().__init__()
        self.__dict__["_wrapped"] = model  # not a submodule: the model's module names stay its own
        self.position, self.num_inputs, self.keywords = position, num_inputs, keywords

    @property  # type: ignore[override]
    def training(self) -> bool:  # the model's own flag
        return self.__dict__["_wrapped"].training if "_wrapped" in self.__dict__ else True

    @training.setter
    def training(self, mode: bool) -> None:
        if "_wrapped" in self.__dict__:  # nn.Module.__init__ sets it before the model is held: not the model's
            self.__dict__["_wrapped"].training = mode

    @property
    def wrapped(self) -> nn.Module:
        """The model."""
        return self.__dict__["_wrapped"]

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Any:
        if self.keywords:
            others = [kwargs.pop(other_input_key(j)) for j in range(self.num_inputs) if j != self.position]
        else:
            others, args = list(args[: self.num_inputs - 1]), args[self.num_inputs - 1:]
        inputs = [*others[: self.position], x, *others[self.position:]]
        return eager_module(self.wrapped)(*inputs, *args, **kwargs)

    def train(self, mode: bool = True) -> ChosenInput:
        self.wrapped.train(mode)
        return self

    def named_modules(self, memo: set[nn.Module] | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, nn.Module]]:
        return self.wrapped.named_modules(memo, prefix, remove_duplicate)

    def named_children(self) -> Iterator[tuple[str, nn.Module]]:
        return self.wrapped.named_children()

    def get_submodule(self, target: str) -> nn.Module:
        return self.wrapped.get_submodule(target)

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        return self.wrapped.state_dict(*args, **kwargs)

    def _apply(self, fn: Any, recurse: bool = True) -> ChosenInput:
        self.wrapped._apply(fn, recurse)
        return self

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name.startswith("_") or "_wrapped" not in self.__dict__:
                raise
            return getattr(self.__dict__["_wrapped"], name)

    def extra_repr(self) -> str:
        return f"{type(self.wrapped).__name__}, position={self.position}, num_inputs={self.num_inputs}"


def model_call(model: nn.Module, args: tuple) -> tuple[nn.Module, tuple]:
    """The module whose ``forward`` receives the positional call ``model(*args)``, and the arguments it
    receives: a :class:`ChosenInput` of positional forward arguments passes ``(x_k, *others, *rest)`` to its
    model as ``(x_0, ..., x_{n-1}, *rest)``, so that code reading the call by ``forward``'s parameter names
    (a positional ``attention_mask``) reads the model's own (one whose other inputs travel as keywords, ``None`` in
    their places: :func:`model_keywords` names them); any other module receives ``args`` as they are.

    Args:
        model: the module called.
        args: the positional arguments of the call, its inputs first (stand-ins such as ``None`` will do).

    Examples:
        >>> from torch import nn
        >>> class Three(nn.Module):
        ...     def forward(self, meta, ids, attention_mask):
        ...         return ids
        >>> model = Three()
        >>> called, args = model_call(ChosenInput(model, 1, 2), ("ids", "meta", "mask"))
        >>> called is model, args
        (True, ('meta', 'ids', 'mask'))
    """
    while isinstance(model, ChosenInput) and args:
        if model.keywords:  # the other inputs travel as keywords (model_keywords): None in their places
            others, rest = (None,) * (model.num_inputs - 1), args[1:]
        else:
            others, rest = args[1: model.num_inputs], args[model.num_inputs:]
        args = (*others[: model.position], args[0], *others[model.position:], *rest)
        model = model.wrapped
    return model, tuple(args)


def model_keywords(model: nn.Module, kwargs: Mapping) -> Mapping:
    """The keyword arguments of the call ``model(x, **kwargs)`` by the names its model's ``forward`` gives them: a
    :class:`ChosenInput` whose other inputs travel as keywords (forward arguments that are a mapping) passes the one
    under :func:`other_input_key` ``(j)`` as its model's parameter ``j``, so that code reading the call by name (time
    stamps or a padding mask given as an input of ``forward(x, times, mask=None)``) reads the model's own, as
    :func:`model_call` does for positional ones; any other module receives ``kwargs`` as they are.

    Args:
        model: the module called.
        kwargs: the keyword arguments of the call.

    Examples:
        >>> from torch import nn
        >>> class Stamped(nn.Module):
        ...     def forward(self, x, times, mask=None):
        ...         return x
        >>> model_keywords(ChosenInput(Stamped(), 0, 2, keywords=True), {"_input_1": "t", "mask": "m"})
        {'times': 't', 'mask': 'm'}
    """
    model = eager_module(model)
    while isinstance(model, ChosenInput) and model.keywords:
        names = positional_names(model.wrapped) or []
        keys = {other_input_key(j): names[j] for j in range(min(model.num_inputs, len(names))) if j != model.position}
        kwargs = {keys.get(k, k): v for k, v in kwargs.items()}
        model = eager_module(model.wrapped)
    return kwargs


def model_name(model: nn.Module) -> str:
    """The class name of the model the user wrote, for messages: seen through the wrappers the package puts
    around it (:class:`ChosenInput`, the callback's ``explain=``) and ``torch.compile``'s, so that an error of
    an audit of ``explain="tab"`` names ``ImageTab``, not ``ChosenInput``.

    Args:
        model: the model (or a wrapper of it).

    Examples:
        >>> from torch import nn
        >>> model_name(ChosenInput(nn.Bilinear(2, 2, 1), 1, 2)), model_name(nn.Linear(2, 2))
        ('Bilinear', 'Linear')
    """
    model = eager_module(model)
    while isinstance(model, ChosenInput):
        model = eager_module(model.wrapped)
    return type(model).__name__


def check_input_choice(explain: Any, where: str = "the inputs tuple", error: type[Exception] = ValueError) -> int | str | None:
    """``explain=`` (which input of a model of several inputs to explain) as given: ``None``, an int >= 0 (the
    input's position in ``where``) or a non-empty str (``forward``'s parameter).

    Args:
        explain: the value given.
        where: what holds the inputs, for the message (``"the probe's inputs tuple"``).
        error: the exception raised (``MisconfigurationException`` in Lightning-facing code).

    Raises:
        error: anything else, naming the value.

    Examples:
        >>> check_input_choice(1), check_input_choice("tab"), check_input_choice(None)
        (1, 'tab', None)
    """
    if explain is None or isinstance(explain, str) and explain:
        return explain
    if isinstance(explain, bool) or not isinstance(explain, int) or explain < 0:
        raise error(f"Expected argument `explain` to be None, an int >= 0 (the position of the explained input in {where}) "
                    f"or the name of forward's parameter (str) but got {explain!r}")
    return explain


FORWARDS_TO = "_forwards_to"
"""The attribute by which a module whose ``forward(*args, **kwargs)`` passes its arguments unchanged to another module
names that module (``CausalRepairModule._forwards_to``: the wrapped ``LightningModule``): the names of forward's
parameters (:func:`positional_names`, :func:`has_default`) are read from that module's forward."""


def _forward_parameters(model: nn.Module) -> list[inspect.Parameter]:
    """The parameters of ``model.forward`` (a compiled model's original's, :func:`eager_module`); of the module a
    wrapper passes every argument to (:data:`FORWARDS_TO`) where its own forward takes only ``*args, **kwargs``.

    Raises:
        TypeError, ValueError: no signature to read.
    """
    model = eager_module(model)
    parameters = list(inspect.signature(model.forward).parameters.values())
    target = getattr(model, FORWARDS_TO, None)
    passes_all = bool(parameters) and all(p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD) for p in parameters)
    if passes_all and isinstance(target, nn.Module) and target is not model:
        return list(inspect.signature(eager_module(target).forward).parameters.values())
    return parameters


def positional_names(model: nn.Module) -> list[str] | None:
    """The names of ``model.forward``'s positional parameters in order (``None`` where it takes ``*args`` first
    or has no signature to read).

    Args:
        model: the model.

    Examples:
        >>> from torch import nn
        >>> positional_names(nn.Bilinear(2, 2, 1))
        ['input1', 'input2']
    """
    try:
        parameters = _forward_parameters(model)
    except (TypeError, ValueError):
        return None
    names = []
    for p in parameters:
        if p.kind == inspect.Parameter.VAR_POSITIONAL:
            return names or None
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
    return names


def has_default(model: nn.Module, name: str) -> bool:
    """Whether ``model.forward``'s parameter ``name`` has a default value (``False`` where it has none, there is no
    such parameter, or no signature to read): ``forward(x_t, t, y=None)``, whose ``y`` may be left out.

    Examples:
        >>> from torch import nn
        >>> class Denoiser(nn.Module):
        ...     def forward(self, x_t, t, y=None):
        ...         return x_t
        >>> has_default(Denoiser(), "y"), has_default(Denoiser(), "t")
        (True, False)
    """
    try:
        parameter = next((p for p in _forward_parameters(model) if p.name == name), None)
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.default is not inspect.Parameter.empty


def input_position(explain: int | str, model: nn.Module, num_inputs: int, holder: str = "the inputs",
                   error: type[Exception] = ValueError) -> int:
    """The position among ``num_inputs`` inputs of the input ``explain`` names: a position, or the name of
    ``model.forward``'s parameter that takes it.

    Args:
        explain: the position (int) or the parameter's name (str), checked by :func:`check_input_choice`.
        model: the model, called ``model(*inputs, ...)``.
        num_inputs: the number of inputs, at least 2.
        holder: what holds the inputs, for the messages (``"the probe"``, ``"the batch"``).
        error: the exception raised.

    Raises:
        error: a position out of range, or a name that is no parameter of ``model.forward`` taking an input.

    Examples:
        >>> from torch import nn
        >>> input_position("input2", nn.Bilinear(2, 2, 1), 2), input_position(0, nn.Bilinear(2, 2, 1), 2)
        (1, 0)
    """
    names = positional_names(model)
    shown = f" ({', '.join(repr(n) for n in names[:num_inputs])})" if names and len(names) >= num_inputs else ""
    allowed = (f"an input position from 0 to {num_inputs - 1} or the name of one of forward's first {num_inputs} "
               f"parameters{shown}")
    if isinstance(explain, int):
        if explain >= num_inputs:
            raise error(f"Expected argument `explain` to be {allowed} ({holder} holds {num_inputs} inputs) but got {explain}")
        return explain
    if names is None or explain not in names:
        raise error(f"Expected argument `explain` to be {allowed} but got {explain!r}, which is no parameter of "
                    f"{model_name(model)}.forward" + (f" (its parameters: {names})" if names else ""))
    position = names.index(explain)
    if position >= num_inputs:
        raise error(f"Expected argument `explain` to be {allowed} but got {explain!r}, forward's parameter {position}: "
                    f"{holder} holds {num_inputs} inputs, so {explain!r} is passed as a forward argument, not an input")
    return position


def chosen_input(model: nn.Module, inputs: tuple[Tensor, ...], position: int,
                 additional_forward_args: Any = None) -> tuple[nn.Module, Tensor, Any]:
    """``model`` of the ``inputs`` as a model of ``inputs[position]``: the :class:`ChosenInput`, that input,
    and the forward arguments that carry the other inputs beside ``additional_forward_args`` (a tuple:
    the other inputs first, then its values; a mapping: its entries and the other inputs under
    :func:`other_input_key`; one value: as a tuple of one). The first input with forward arguments that are
    not a mapping needs no wrapper: ``model`` itself, the other inputs as its positional forward arguments. The tensors
    that a cut probe's forward arguments pass whole stay marked so
    (:func:`~lightning_causal.causal.engine.forward_args.marks_kept`): a weight of as many rows as the cut's samples.

    Args:
        model: the model, called ``model(*inputs, *args, **kwargs)``.
        inputs: its ``n >= 2`` input tensors, ``[N, ...]`` each.
        position: the input to explain.
        additional_forward_args: the forward arguments after the inputs (Captum's convention).

    Raises:
        ValueError: fewer than 2 inputs, ``position`` out of range, or a mapping of forward arguments that
            holds a key of :func:`other_input_key`.
    """
    if not isinstance(inputs, tuple) or len(inputs) < 2:
        raise ValueError(f"Expected argument `inputs` to be a tuple of at least 2 tensors but got {type(inputs).__name__}")
    keywords = isinstance(additional_forward_args, Mapping)
    wrapper = ChosenInput(model, position, len(inputs), keywords=keywords)
    others = [t for j, t in enumerate(inputs) if j != position]
    if position == 0 and not keywords:
        model_called: nn.Module = model
    else:
        model_called = wrapper
    if keywords:
        clash = [k for k in additional_forward_args if k.startswith(other_input_key(0)[:-1])]  # type: ignore[union-attr]
        if clash:
            raise ValueError(f"Expected forward arguments without the reserved keys '_input_<k>' but got {clash}")
        args: Any = marks_kept({**additional_forward_args,  # type: ignore[dict-item]
                                **{other_input_key(j): t for j, t in enumerate(inputs) if j != position}}, additional_forward_args)
    elif additional_forward_args is None:
        args = tuple(others)
    elif isinstance(additional_forward_args, tuple):  # the tensors a cut probe passes whole stay marked, after the others
        args = marks_kept((*others, *additional_forward_args), additional_forward_args, offset=len(tensor_leaves(others)))
    else:
        args = (*others, additional_forward_args)
    return model_called, inputs[position], args
