"""The do-operator on rows: input groups set to a baseline, hidden units replaced, vectorised over
the rows of a chunk (row ``r`` = one intervention applied to sample ``s[r]``).

Examples:
    >>> import torch
    >>> x = torch.tensor([[1.0, 2.0, 3.0]])
    >>> mask = torch.tensor([[0, 0, 1]])
    >>> ablate_groups(x, mask, torch.tensor([0, 0]), torch.tensor([0, 1]), values=torch.tensor(0.0))
    tensor([[0., 0., 3.],
            [1., 2., 0.]])
    >>> replace_units(torch.ones(2, 3), torch.tensor([0, 2]), torch.tensor(5.0))
    tensor([[5., 1., 1.],
            [1., 1., 5.]])
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.chosen_input import model_call, model_keywords
from lightning_causal.causal.engine.eager import eager_module
from lightning_causal.causal.engine.forward_args import tensor_leaves, whole_positions
from lightning_causal.causal.engine.groups import group_counts
from lightning_causal.causal.engine.live_values import rows_of
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning
from lightning_causal.causal.engine.token_ids import INDEX_DTYPES, is_integer
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["TOKEN_BASELINE_ADVICE", "as_baselines_words", "mask_reads", "TORCH_SENSE_WAY", "unnamed_observation_mask", "unnamed_padding", "unnamed_padding_way", "check_baselines", "shown_baseline", "sample_rows", "ablate_groups", "changed_groups",
           "differs", "replace_units", "padding_arguments", "key_padding", "unread_attention_mask", "lengths_alias", "padding_positions", "time_axis", "step_positions", "input_padding", "named_padding", "padded_steps", "unpadded_masks", "position_mean", "reference_mask"]

BaselineLike = float | int | complex | Tensor | Sequence

#: what to give as the baseline of token ids (said where a float baseline meets them)
TOKEN_BASELINE_ADVICE = ("give one that stands for no word, e.g. `baseline=tokenizer.mask_token_id` ([MASK]) or "
                         "`tokenizer.unk_token_id` (the pad id also moves the positions on RoBERTa and the token read on "
                         "GPT-2 classifiers)")


def as_baselines_words(message: str, name: str = "argument `baselines`") -> str:
    """A refusal of :func:`check_baselines` or of a token baseline, for a caller that takes the baseline as ``baselines``
    (Captum's name: ``attribute``, ``layer_attribute``): the argument named ``name``, and the way out's keyword of
    :data:`TOKEN_BASELINE_ADVICE` one that caller takes.

    Examples:
        >>> as_baselines_words("Expected argument `baseline` to be an integer: e.g. `baseline=tokenizer.mask_token_id`")
        'Expected argument `baselines` to be an integer: e.g. `baselines=tokenizer.mask_token_id`'
    """
    return message.replace("argument `baseline`", name, 1).replace("`baseline=", "`baselines=")


def shown_baseline(b: object) -> str:
    """A refused baseline as a message shows it: ``0.0`` is said to be the default for float inputs (a value
    the user of token ids never gave); a tensor of more than one element by its dtype and shape (its repr runs over
    lines and was cut mid-number), a one-element tensor by its value.

    Args:
        b: the baseline given.

    Examples:
        >>> shown_baseline(0.0), shown_baseline(torch.zeros(2, 5)), shown_baseline(torch.tensor(0.5))
        ('0.0, the default for float inputs', 'a torch.float32 tensor [2, 5]', 'tensor(0.5000)')
    """
    if isinstance(b, Tensor) and b.numel() > 1:
        return f"a {b.dtype} tensor {list(b.shape)}"
    return "0.0, the default for float inputs" if isinstance(b, float) and b == 0.0 else f"{b!r:.80}"


def _check_one(x: Tensor, b: object, *, advice: bool = True) -> Tensor:
    if x.dtype == torch.bool:  # a mask as input: False or True (0 or 1), nothing that the cast would make True
        _check_bool_baseline(b)
    elif isinstance(b, bool):
        raise TypeError(f"Expected argument `baseline` to be a number or a tensor for inputs of dtype {x.dtype} but got {b}: "
                        "False and True are the baselines of bool inputs (masks)")
    elif isinstance(b, complex) and not x.is_complex() or not isinstance(b, (int, float, complex, Tensor)):
        raise TypeError(f"Expected argument `baseline` to be a number or a tensor but got {type(b).__name__}"
                        + (f" (complex baselines are for complex inputs; these are {x.dtype})" if isinstance(b, complex) else ""))
    if isinstance(b, Tensor) and b.is_complex() and not x.is_complex():  # .to() would drop the imaginary part
        raise TypeError(f"Expected argument `baseline` of the inputs' kind, real for inputs of dtype {x.dtype}, but got a "
                        f"complex tensor ({b.dtype}): its imaginary part would be dropped")
    integer_input = is_integer(x)
    if integer_input:  # token ids: the baseline is a token id, never a rounded float
        if isinstance(b, float) or isinstance(b, Tensor) and (b.is_floating_point() or b.is_complex() or b.dtype == torch.bool):
            message = f"Expected argument `baseline` to be an integer (a token id) for integer inputs of dtype {x.dtype} but got "
            if not advice:  # inputs that mix codes and floats: check_baselines says what to give; a scalar as given
                raise ValueError(message + (shown_baseline(b) if isinstance(b, Tensor) else repr(b)))
            if x.dtype not in INDEX_DTYPES:  # no token ids: pixels, PCM samples; what such inputs take, then what was given
                raise ValueError(_raw_sample_message(x, b))
            raise ValueError(message + f"{shown_baseline(b)}: for token ids {TOKEN_BASELINE_ADVICE}; for integer codes, a reference code")
        _check_integer_range(x.dtype, b)
    # a Python number straight in the input's dtype: through the default float32 a float64 input's
    # baseline 0.7 became 0.699999988 (effects off by ~1e-9, float32 precision in a float64 model)
    b = torch.as_tensor(b, dtype=None if isinstance(b, Tensor) else x.dtype, device=x.device).to(x.dtype)
    if 0 < b.dim() < x.dim() - 1:  # fewer dimensions than a sample: leading ones, as torch broadcasts ([F] of [N, T, F])
        b = b.view([1] * (x.dim() - 1 - b.dim()) + list(b.shape))
    if b.dim() == x.dim() - 1:
        b = b.unsqueeze(0)
    if b.dim() == 0:
        b = b.view([1] * x.dim())
    if b.dim() != x.dim() or b.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"Expected argument `baseline` to be a scalar or broadcastable to {list(x.shape)} but got {list(b.shape)}")
    try:
        full = torch.broadcast_shapes(b.shape, x.shape)
    except RuntimeError as err:
        raise ValueError(f"Expected argument `baseline` broadcastable to {list(x.shape)} but got {list(b.shape)}") from err
    if full != x.shape:  # e.g. 3 channels for a 1-channel input: it would grow the input
        raise ValueError(f"Expected argument `baseline` broadcastable to the input's shape {list(x.shape)} without growing it "
                         f"but got {list(b.shape)}")
    if (b.is_floating_point() or b.is_complex()) and not torch.isfinite(b).all():
        raise ValueError("Expected argument `baseline` to be finite but it holds NaN or infinity")
    return b


#: integer inputs that no embedding takes as indices (not :data:`~lightning_causal.causal.engine.token_ids.INDEX_DTYPES`)
#: are values the model scales inside: what their baseline is, in their own words (the one wording of it: CaptumBaseline
#: refuses their baselines through :func:`check_baselines` too)
_RAW_SAMPLES = {torch.uint8: ("uint8 images (pixels 0..255 the model scales inside), a pixel value, e.g. `baseline=0` "
                              "(black), or a per-pixel reference image, e.g. `mean.round().to(torch.uint8)`"),
                **dict.fromkeys((torch.int8, torch.int16), "int16 or int8 samples that the model scales inside (PCM audio), "
                                "a raw value, e.g. `baseline=0` (silence)")}


def _raw_sample_message(x: Tensor, b: object) -> str:
    """The refusal of a float or bool baseline for integer inputs other than token ids (uint8 pixels, int8/int16
    samples): it names what they take (an int in the dtype's range or an integer tensor of such values broadcastable
    to the input), then the value given (a tensor of several elements by its dtype and shape)."""
    info = torch.iinfo(x.dtype)
    shown = shown_baseline(b)
    masks = " (False and True are the baselines of bool inputs, masks)" if isinstance(b, Tensor) and b.dtype == torch.bool else ""
    return (f"Expected argument `baseline` to be an int in [{info.min}, {info.max}] or an integer (e.g. {x.dtype}) tensor "
            f"of such values broadcastable to the input {list(x.shape)} for inputs of dtype {x.dtype} but got {shown}{masks}: "
            f"for {_RAW_SAMPLES.get(x.dtype, f'{x.dtype} values that the model scales inside, a raw value, e.g. `baseline=0`')}; "
            "for token ids or integer codes, an id or a reference code")


def _check_bool_baseline(b: object) -> None:
    """The baseline of a bool input (a mask): ``False``/``True``, ``0``/``1`` (the default ``0.0`` too) or a tensor of them."""
    if isinstance(b, (bool, int, float)) and b in (0, 1):
        return
    if isinstance(b, Tensor) and (b.dtype == torch.bool or not b.is_complex() and bool(((b == 0) | (b == 1)).all())):
        return
    raise ValueError(f"Expected argument `baseline` to be False or True (0 or 1) for bool inputs (masks) but got "
                     f"{shown_baseline(b)}: the cast to bool would make any "
                     "other value True; e.g. `baseline=False` (the mask off)")


def _check_integer_range(dtype: torch.dtype, b: object) -> None:
    """An integer baseline must fit the inputs' dtype: ``-1`` of ``uint8`` became 255 (a cast wraps), 300 a torch error."""
    info = torch.iinfo(dtype)
    if isinstance(b, Tensor):
        if b.numel() == 0:
            return
        low, high = int(b.min()), int(b.max())
    else:
        low = high = int(b)  # type: ignore[call-overload]
    if low < info.min or high > info.max:
        bad = low if low < info.min else high
        raise ValueError(f"Expected argument `baseline` to fit the inputs' dtype {dtype} ([{info.min}, {info.max}]) but got {bad}: "
                         "the cast would wrap it to another value; give one in that range (for uint8 pixels, e.g. 0)")


def check_baselines(xs: tuple[Tensor, ...], baseline: BaselineLike) -> tuple[Tensor, ...]:
    """One baseline per input, each ``[1 or N, ...]`` broadcastable to its input.

    ``baseline`` is a number, a tensor broadcastable to the input (or to one sample; fewer dimensions
    are aligned on the last ones, as torch broadcasts: per-feature values ``[F]`` for ``[N, T, F]``),
    or a tuple with one of those per input. Integer inputs (token ids) need an integer baseline, in their
    dtype's range (uint8 pixels: ``[0, 255]``): an int, or an integer tensor broadcastable to the input (a float or bool
    one is refused, for integer inputs other than token ids (int64/int32), such as uint8 pixels and int8/int16
    samples, naming the range and a pixel or sample value; a complex one as by every real input, a ``TypeError``); bool inputs
    (masks) take ``False``/``True`` (0 or 1); complex numbers and tensors are the baselines of complex inputs only (a real input would drop the imaginary part).

    Args:
        xs: the inputs ``[N, ...]``, one tensor per positional input.
        baseline: the baseline(s), as above.

    Examples:
        >>> import torch
        >>> check_baselines((torch.zeros(2, 3),), 1.5)[0].shape
        torch.Size([1, 1])
        >>> check_baselines((torch.zeros(2, 3, dtype=torch.long),), 0.5)
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `baseline` to be an integer (a token id) for integer inputs of dtype torch.int64 but got 0.5: ...
    """
    bs = baseline if isinstance(baseline, tuple) else (baseline,) * len(xs)
    if len(bs) != len(xs):
        raise ValueError(f"Expected argument `baseline` to have one entry per input ({len(xs)}) but got {len(bs)}")
    mixed = len(xs) > 1 and not isinstance(baseline, tuple) and len({x.is_floating_point() for x in xs}) > 1
    try:
        return tuple(_check_one(x, b, advice=not mixed) for x, b in zip(xs, bs))
    except ValueError as err:
        if not mixed:
            raise
        example = ", ".join("0.0" if x.is_floating_point() else "0" for x in xs)
        raise ValueError(f"{err}; the inputs mix integer codes and floats: pass one baseline per input, e.g. "
                         f"`baseline=({example})`") from err


_PADDING_NAMES = ("attention_mask", "lengths")
#: the words that end a name of the explained input's step counts (``x_lens``, ``feats_lengths``, ``seq_len``)
_LENGTH_WORDS = ("lengths", "length", "lens", "len")
#: the usual names of an input sequence, whose ``<name>_lengths`` are its step counts whatever forward calls the input
#: (``F.ctc_loss``'s ``input_lengths``, ESPnet's ``speech_lengths``/``ilens``, icefall's ``x_lens``, fairseq's
#: ``src_lengths``); a target's, a label's or a transcript's counts (``target_lengths``) are never among them
_INPUT_STEMS = ("input", "inputs", "i", "x", "xs", "feat", "feats", "feature", "features", "speech", "audio", "wav",
                "wave", "waveform", "signal", "input_signal", "seq", "seqs", "sequence", "sequences", "src", "source",
                "frame", "frames", "spec", "mel", "fbank")


def lengths_alias(name: object, inputs: Sequence[str] = ()) -> bool:
    """Whether a forward argument named ``name`` holds the explained input's step counts, read as ``lengths``
    (:func:`padding_arguments`): ``<stem>_<word>`` or ``<stem><word>`` with ``word`` one of ``lengths``, ``length``,
    ``lens``, ``len`` and ``stem`` the name of an explained input's parameter of ``model.forward`` (``inputs``:
    ``forward(self, feats, feats_len)``) or a usual name of an input sequence (``_INPUT_STEMS``: ``input_lengths``,
    ``feat_lens``, ``speech_lengths``, ``x_lens``, ``seq_lens``, ``src_lengths``, ``ilens``). The counts of
    another forward argument (``target_lengths``, ``label_lengths``, ``text_lens``) are not: read as the input's,
    its frames past a transcript's length would be taken for padding; nor a bare ``lens`` or ``length`` (a camera
    lens's id, a scalar).

    Examples:
        >>> [lengths_alias(k) for k in ("input_lengths", "feat_lens", "speech_lengths", "x_lens", "seq_lens", "ilens")]
        [True, True, True, True, True, True]
        >>> [lengths_alias(k) for k in ("target_lengths", "label_lengths", "y_lens", "lens", "lengths", "n")]
        [False, False, False, False, False, False]
        >>> lengths_alias("y_lens", inputs=("y",)), lengths_alias("tokens_len", inputs=("tokens",))
        (True, True)
    """
    stem = _length_stem(name)
    return stem is not None and (stem in _INPUT_STEMS or stem in {i.lower() for i in inputs})


def _length_stem(name: object) -> str | None:
    """``stem`` of a name ``<stem>_<word>`` or ``<stem><word>`` (``word`` of :data:`_LENGTH_WORDS`), lower case; ``None``
    for another name and for ``lengths``/``attention_mask`` themselves."""
    if not isinstance(name, str) or name in _PADDING_NAMES:
        return None
    low = name.lower()
    word = next((w for w in _LENGTH_WORDS if low.endswith(w)), None)
    if word is None:
        return None
    stem = low[: -len(word)]
    return stem[:-1] if stem.endswith("_") else stem


def _padding_name(name: object, inputs: Sequence[str]) -> bool:
    """A name :func:`padding_arguments` reads: an ``attention_mask``, ``lengths`` or another name of them
    (:func:`lengths_alias`)."""
    return name in _PADDING_NAMES or lengths_alias(name, inputs)


def _input_names(model: nn.Module | None, num_inputs: int, additional_forward_args: object = None
                 ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The names of ``model.forward``'s parameters the ``num_inputs`` inputs bind to (a :class:`ChosenInput` seen
    through, the positional ``additional_forward_args`` in their places: the explained input's own name, not the first
    parameter's), and those of its other parameters; none where they cannot be read."""
    if model is None:
        return (), ()
    marks = tuple(object() for _ in range(num_inputs))
    args = (() if isinstance(additional_forward_args, Mapping) or additional_forward_args is None else
            additional_forward_args if isinstance(additional_forward_args, tuple) else (additional_forward_args,))
    for call_args in ((*marks, *args), marks) if args else (marks,):
        try:
            called, call = model_call(eager_module(model), call_args)
            bound = inspect.signature(eager_module(called).forward).bind_partial(*call)
        except (TypeError, ValueError):
            continue
        inputs = tuple(k for k, v in bound.arguments.items() if any(v is m for m in marks))
        return inputs, tuple(k for k in bound.signature.parameters if k not in inputs)
    return (), ()


def padding_arguments(model: nn.Module | None, additional_forward_args: object, num_inputs: int = 1) -> Mapping | None:
    """The forward arguments that can mark padding, by name: a ``Mapping`` (keywords) as it is;
    positional arguments (a tuple, or one value) named by the parameters of ``model.forward`` they
    bind to after the ``num_inputs`` inputs (``forward(self, x, lengths)`` called with
    ``additional_forward_args=(lengths,)``); ``None`` when there are none or they cannot be named.
    A tensor nested in an argument under the same name, a named tuple's field or a mapping's value at
    any depth (``forward(x, meta)`` with ``meta.attention_mask`` or ``meta["lengths"]``), is one too:
    such tensors travel with their rows (:class:`~lightning_causal.causal.engine.forward_args.ForwardArgs`);
    an argument of that name itself (a tensor, not ``None``) comes first, then the first nested one. A list's items are not looked into.
    Another name of the explained input's step counts (:func:`lengths_alias`: ``F.ctc_loss``'s ``input_lengths``,
    ``feat_lens``, ``x_lens``, ``<input>_lengths`` of ``forward``'s input parameter), under any of these forms, is read
    as ``lengths`` where no ``lengths`` is given (the first so named); ``target_lengths`` and the like are not.
    A :class:`~lightning_causal.causal.engine.chosen_input.ChosenInput` (the callback's ``explain=``) is
    seen through: the arguments are named by its model's ``forward``, the other inputs in their places
    (:func:`~lightning_causal.causal.engine.chosen_input.model_call`).

    Examples:
        >>> import torch
        >>> from collections import namedtuple
        >>> class Packed(nn.Module):
        ...     def forward(self, x, lengths):
        ...         return x
        >>> padding_arguments(Packed(), (torch.tensor([2, 1]),))
        {'lengths': tensor([2, 1])}
        >>> Meta = namedtuple("Meta", "lengths name")
        >>> padding_arguments(None, {"meta": Meta(torch.tensor([2, 1]), "a")})["lengths"]
        tensor([2, 1])
    """
    inputs, others = _input_names(model, num_inputs, additional_forward_args)
    named = _top_level_padding(model, additional_forward_args, num_inputs, inputs)
    values = (additional_forward_args.values() if isinstance(additional_forward_args, Mapping) else
              additional_forward_args if isinstance(additional_forward_args, tuple) else (additional_forward_args,))
    nested: dict[str, Tensor] = {}
    for v in values:
        _nested_padding(v, nested, inputs)
    top = dict(named or {})
    nested = {k: v for k, v in nested.items() if not isinstance(top.get(k), Tensor)}  # a tensor so named itself first
    found = {**top, **nested} if nested else named
    if isinstance(found, Mapping) and not isinstance(found.get("lengths"), Tensor):  # `x_lens` alone: the lengths
        # the explained input's own counts first (`y_lens` explaining y); another parameter's (`x_lens` of forward's
        # `x`, not explained) never
        own = {i.lower() for i in inputs}
        counts = [(_length_stem(k) not in own, v) for k, v in found.items() if isinstance(v, Tensor)
                  and lengths_alias(k, inputs) and _length_stem(k) not in {o.lower() for o in others}]
        alias = min(counts, key=lambda c: c[0])[1] if counts else None
        if alias is not None:
            found = {**found, "lengths": alias}
    return found


def _top_level_padding(model: nn.Module | None, additional_forward_args: object, num_inputs: int,
                       inputs: Sequence[str] = ()) -> Mapping | None:
    """:func:`padding_arguments` of the arguments themselves (keywords, or positional ones named by ``model.forward``)."""
    if isinstance(additional_forward_args, Mapping) or additional_forward_args is None:
        return _named_arguments(model, additional_forward_args, num_inputs)
    named = _named_arguments(model, additional_forward_args, num_inputs)
    return None if named is None else {k: v for k, v in named.items() if _padding_name(k, inputs)}


def _named_arguments(model: nn.Module | None, additional_forward_args: object, num_inputs: int = 1) -> Mapping | None:
    """The forward arguments by name: keywords (a ``Mapping``) by their keys, positional ones by the parameters of
    ``model.forward`` they bind to after the ``num_inputs`` inputs; a ``ChosenInput`` seen through, the other inputs it
    carries named by its model's parameters either way (:func:`model_call`, :func:`model_keywords`; the explained
    input's own parameter holds ``None`` or is absent); ``None`` where they cannot be named."""
    if additional_forward_args is None:
        return None
    if isinstance(additional_forward_args, Mapping):
        return additional_forward_args if model is None else model_keywords(model, additional_forward_args)
    if model is None:
        return None
    args = additional_forward_args if isinstance(additional_forward_args, tuple) else (additional_forward_args,)
    try:
        called, call = model_call(eager_module(model), (*([None] * num_inputs), *args))  # a ChosenInput: its model's call
        bound = inspect.signature(eager_module(called).forward).bind_partial(*call)
    except (TypeError, ValueError):  # a signature that takes no such call, or none to read
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = bound.signature.parameters
    return {k: v for k, v in bound.arguments.items() if params[k].kind in positional}


def unnamed_lengths(x: Tensor, additional_forward_args: object, *, model: nn.Module | None = None) -> str | None:
    """A forward argument under a bare name of step counts, ``length``, ``lens`` or ``len``, which is not read as
    ``lengths`` (:func:`lengths_alias`: it may count anything), holding ``x``'s step counts, in words, or ``None``:
    integers ``[N]`` from 1 to the size of ``x``'s dimension 1, some fewer, with ``x`` holding one pad value at every
    step after them (:func:`_filled_after`). To be asked where :func:`padding_positions` found no padding: the padded
    steps are set by the interventions, given effects of their own (0 where the model packs them away) and counted in
    the means. Named by its keyword or parameter.

    Examples:
        >>> import torch
        >>> x = torch.ones(2, 3, 1)
        >>> x[1, 2] = 0
        >>> unnamed_lengths(x, {"length": torch.tensor([3, 2])}), unnamed_lengths(x, {"length": torch.tensor([3, 3])})
        ("the forward argument 'length'", None)
    """
    named = _named_arguments(model, additional_forward_args)
    if x.dim() < 2 or not isinstance(named, Mapping):
        return None
    for key, v in named.items():
        if (key in _LENGTH_WORDS[1:] and isinstance(v, Tensor) and v.shape == x.shape[:1] and is_integer(v)
                and bool((v >= 1).all()) and bool((v <= x.shape[1]).all())
                and bool((v < x.shape[1]).any()) and _filled_after(x, v, 1)):
            return f"the forward argument {key!r}"
    return None


def _nested_padding(value: object, found: dict[str, Tensor], inputs: Sequence[str] = ()) -> None:
    """Add to ``found`` the tensors of :data:`_PADDING_NAMES` (and :func:`lengths_alias`'s names, ``inputs`` the explained
    inputs' parameters) among the fields of the named tuples and the values of the mappings in ``value``, at any depth
    (the first of each name is kept), as :class:`ForwardArgs` looks into them."""
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        items = list(zip(value._fields, value))
    elif isinstance(value, Mapping):
        items = list(value.items())
    else:
        return
    for key, v in items:
        if _padding_name(key, inputs) and isinstance(v, Tensor):
            found.setdefault(key, v)
        _nested_padding(v, found, inputs)


def padding_positions(
    x: Tensor, additional_forward_args: object, *, model: nn.Module | None = None, num_inputs: int = 1
) -> Tensor | None:
    """Positions of ``x`` that the model is told to ignore: where the forward argument
    ``attention_mask`` (Hugging Face's name; a tensor with ``x``'s first two dimensions, or of ``x``'s own shape
    ``[N, T, C]``, an irregularly sampled series' observation mask, read entry by entry) is 0, or,
    without one, the steps ``t >= lengths[n]`` of an argument ``lengths`` (one integer per sample, as
    ``pack_padded_sequence`` takes it; dimension 1 of ``x`` is time, ``batch_first``, or another of a
    channels-first input, :func:`time_axis`). Keyword
    arguments (a ``Mapping``) are read by their keys; positional ones (a tuple) by the name of the
    parameter of ``model.forward`` they bind to (:func:`padding_arguments`; ``num_inputs`` inputs
    come first), so ``model(x, lengths)`` with ``additional_forward_args=(lengths,)`` is read as
    ``{"lengths": lengths}``; a named tuple's field or a mapping's value so named inside an argument too. Returned as booleans broadcastable to ``x`` (``[N, T, 1, ...]``), or
    ``None`` without such an argument, or when the argument describes another tensor: a forward
    argument (token ids, a sequence) beside ``x`` that :func:`input_padding`'s rules prefer, so that
    explaining a metadata table ``[N, M]`` with ``{"x": seq, "lengths": lengths}`` does not read its
    column ``j`` as padding in every sample shorter than ``j``.

    Examples:
        >>> import torch
        >>> padding_positions(torch.zeros(1, 3, dtype=torch.long), {"attention_mask": torch.tensor([[1, 1, 0]])})
        tensor([[False, False,  True]])
        >>> padding_positions(torch.zeros(2, 3, 4), {"lengths": torch.tensor([3, 1])}).shape
        torch.Size([2, 3, 1])
        >>> padding_positions(torch.ones(1, 2, 3), {"attention_mask": torch.tensor([[[1, 0, 1], [0, 1, 1]]])})  # observed: 1
        tensor([[[False,  True, False],
                 [ True, False, False]]])
        >>> padding_positions(torch.zeros(2, 3, 4), {"lengths": torch.tensor([3, 1])})[..., 0]
        tensor([[False, False, False],
                [False,  True,  True]])
    """
    named = padding_arguments(model, additional_forward_args, num_inputs)
    if not isinstance(named, Mapping):
        return None
    tensors = (x, *_argument_tensors(additional_forward_args, named, x.shape[0]))
    scans: dict = {_CANDIDATES: tensors}  # each tensor's time axis and padding read once (a waveform's scan costs ms)
    pad = _padding_of(x, named, scans)
    if pad is None or _described(tensors, named, scans) != 0:
        return None
    return _sense_checked(x, pad, named, scans)


#: the way out for an additive mask (0 beside -1e9 or -inf) under another name than ``attention_mask``
ADDITIVE_WAY = ("pass it as `attention_mask` (an additive mask, 0 at the real positions and -inf or a number at most -1e4 "
                "at the padding, is read by its negative entries) or name the parameter so")

#: the way out for a padding mask of torch's sense (``key_padding_mask``: ``True`` = padding), which only an
#: ``attention_mask`` of Hugging Face's (1 = real) is read as
TORCH_SENSE_WAY = ("pass `attention_mask=~key_padding_mask` (1 at the real positions, 0 at the padding) and give the model "
                   "`key_padding_mask = attention_mask == 0`")


def unnamed_padding_way(value: float) -> str:
    """The way out for a padding mask under another name (:func:`unnamed_padding`) whose padding is ``value``: 0 of a
    keep mask (``node_mask``), 1 of torch's sense (:data:`TORCH_SENSE_WAY`), a negative one of an additive mask
    (:data:`ADDITIVE_WAY`).

    Examples:
        >>> unnamed_padding_way(0)
        'name the parameter `attention_mask` or pass it as that keyword'
    """
    return ("name the parameter `attention_mask` or pass it as that keyword" if value == 0 else
            TORCH_SENSE_WAY if value == 1 else ADDITIVE_WAY)


def _sense_checked(x: Tensor, pad: Tensor, named: Mapping, scans: dict | None = None) -> Tensor:
    """``pad``, the padding of ``x`` the named arguments give, once :func:`_check_padding_sense` has found an
    ``attention_mask`` of ``x``'s shape ``[N, T]`` in Hugging Face's sense: what :func:`padding_positions` and
    :func:`input_padding` return (``scans``: the call's scans)."""
    att = _attention_mask(x, named, scans)
    if isinstance(att, Tensor) and att.shape == x.shape[:2]:
        _check_padding_sense(x, pad.view(att.shape))
    elif _observation_mask(x, att) and _imputed_varies(x, pad):  # entry by entry
        _check_padding_sense(x.reshape(x.shape[0], -1, 1), pad.reshape(x.shape[0], -1))
    return pad


def _imputed_varies(x: Tensor, pad: Tensor) -> bool:
    """Whether ``x`` holds more than one value at the entries an observation mask marks unobserved (``pad``, of ``x``'s
    shape) in some channel (its last dimension): observations there, where the mask is of the opposite sense (1 =
    missing); not one number imputed per channel (a mean), which beside observations all 0 (a rare flag, a 2-row dry
    run) is a mask of the right sense.

    Examples:
        >>> import torch
        >>> pad = torch.tensor([[[False], [True], [True]]])
        >>> _imputed_varies(torch.tensor([[[0.0], [0.1], [0.1]]]), pad), _imputed_varies(torch.tensor([[[0.0], [0.3], [-1.2]]]), pad)
        (False, True)
    """
    values, marked = x.reshape(-1, x.shape[-1]).double(), pad.reshape(-1, x.shape[-1])
    inf = torch.tensor(float("inf"), dtype=torch.float64, device=values.device)
    return bool((torch.where(marked, values, -inf).amax(0) > torch.where(marked, values, inf).amin(0)).any())


def _check_padding_sense(x: Tensor, pad: Tensor) -> None:
    """Refuse an ``attention_mask`` of torch's sense (``key_padding_mask``: ``True`` = padding, the opposite of Hugging
    Face's 1 = real): ``x`` all zero at every position ``pad`` (``[N, T]``, the mask's zeros) calls real and holding values
    at some it calls padding, where read as it is, every real position would be left out and never set, and the
    padding set instead.

    Examples:
        >>> import torch
        >>> padding_positions(torch.tensor([[[1.0], [0.0]]]), {"attention_mask": torch.tensor([[True, False]])}).flatten()
        tensor([False,  True])
        >>> padding_positions(torch.tensor([[[1.0], [0.0]]]), {"attention_mask": torch.tensor([[False, True]])})
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `attention_mask` to be 1 (True) at the real positions and 0 at the padding but the inputs are all zero wherever it is 1 ...
    """
    if not bool(pad.any()) or bool(pad.all()):
        return
    filled = (x != 0).flatten(2).any(2) if x.dim() > 2 else x != 0  # [N, T]: positions holding a value
    if not bool(filled[~pad].any()) and bool(filled[pad].any()):
        raise ValueError(
            "Expected argument `attention_mask` to be 1 (True) at the real positions and 0 at the padding but the inputs "
            f"are all zero wherever it is 1 and hold values where it is 0 (0 at {int(pad.sum())} of {pad.numel()} positions): "
            "a mask of torch's sense (`key_padding_mask`, True = padding) read so would leave every real position out; "
            f"{TORCH_SENSE_WAY}")


def unnamed_padding(x: Tensor, additional_forward_args: object) -> tuple[str, int, int | str] | None:
    """A forward argument that looks like a padding mask of ``x`` under another name, as ``(its name in words, the
    value that marks padding, its key)``, or ``None`` (the key: its keyword, or its position, also as an ``int`` key
    of a mapping that holds the positional arguments beside the keywords): a tensor of ``x``'s first two dimensions holding 0/1 (bool, or numbers),
    with ``x`` (of 3 or more dimensions: the nodes of padded graphs ``[N, max_nodes, F]``, a sequence ``[N, T, F]``) all
    zero wherever it holds one of the two values and not all zero elsewhere, that value running over a prefix or a
    suffix of every row (padding after or before the data: a flag or a dropout mask scattered among the positions is
    none). To be asked where :func:`padding_positions` found no padding (the caller has read it: an ``attention_mask``
    is read, not unnamed). 0 marks padding in a mask that is 1 at the real positions
    (``node_mask``, ``mask``), 1 in one of torch's sense (``key_padding_mask``: ``True`` = padding), its one negative
    value in an additive float mask (``attn_bias``: 0 beside ``-1e9`` or ``-inf``, :data:`ADDITIVE_PAD`). Such a mask reaches
    the model but is not read as padding: the means count its positions as groups of effect 0. Named by its keyword
    or position.

    Examples:
        >>> import torch
        >>> x, m = torch.ones(2, 3, 4), torch.tensor([[1, 1, 0], [1, 1, 1]])
        >>> x[0, 2] = 0
        >>> unnamed_padding(x, {"node_mask": m}), unnamed_padding(x, (m,))
        (("the forward argument 'node_mask'", 0, 'node_mask'), ('the positional forward argument 0', 0, 0))
        >>> unnamed_padding(x, {"key_padding_mask": m == 0})
        ("the forward argument 'key_padding_mask'", 1, 'key_padding_mask')
    """
    if x.dim() < 3:
        return None
    args = (additional_forward_args.items() if isinstance(additional_forward_args, Mapping) else
            enumerate(additional_forward_args) if isinstance(additional_forward_args, tuple) else
            [(0, additional_forward_args)])
    filled = None
    for key, v in args:
        if not isinstance(v, Tensor) or v.shape != x.shape[:2] or v.is_complex():
            continue
        if bool(((v == 0) | (v == 1)).all()):
            values: tuple = (0, 1)
        elif v.is_floating_point() and bool((v < 0).any()):
            try:  # an additive mask (0 beside -1e9 or -inf): its pad value; a bias (0 and -1) is none
                mask_padding(v)
            except ValueError:
                continue
            values = (float(v.min()),)
        else:
            continue
        filled = (x != 0).flatten(2).any(2) if filled is None else filled  # [N, T]: positions holding a value
        for value in values:
            pad = (v == value).to(x.device)
            ends = (pad[:, 1:] >= pad[:, :-1]).all(1) | (pad[:, 1:] <= pad[:, :-1]).all(1)  # a suffix or a prefix
            if bool(pad.any()) and bool(ends.all()) and not bool(filled[pad].any()) and bool(filled[~pad].any()):
                return (f"the forward argument {key!r}" if isinstance(key, str) else
                        f"the positional forward argument {key}"), value, key
    return None


def unnamed_observation_mask(x: Tensor, additional_forward_args: object, *, model: nn.Module | None = None) -> str | None:
    """A forward argument that looks like an observation mask of ``x`` under another name than ``attention_mask``, in
    words, or ``None``: a tensor of ``x``'s own shape (3 or more dimensions: an irregularly sampled series' values
    ``[N, T, C]``) holding both 0 and 1 and nothing else (``mask``, ``observed``: GRU-D's and mTAN's names). Only an
    ``attention_mask`` of that shape is read entry by entry (:func:`padding_positions`); under another name the entries
    it marks unobserved are set and given effects of their own. Named by its keyword, or by the parameter of
    ``model.forward`` it binds to (its position among the forward arguments where ``model`` is not given).

    Examples:
        >>> import torch
        >>> m = torch.tensor([[[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]])
        >>> unnamed_observation_mask(torch.ones(1, 2, 3), {"mask": m}), unnamed_observation_mask(torch.ones(1, 2, 3), {"attention_mask": m})
        ("the forward argument 'mask'", None)
    """
    if x.dim() < 3:
        return None
    named = _named_arguments(model, additional_forward_args)
    args = (named.items() if isinstance(named, Mapping) else
            enumerate(additional_forward_args) if isinstance(additional_forward_args, tuple) else
            [(0, additional_forward_args)])
    for key, v in args:
        if key == "attention_mask" or not _observation_mask(x, v) or v.is_complex():
            continue
        ones = v == 1
        if bool(((v == 0) | ones).all()) and bool(ones.any()) and not bool(ones.all()):
            return f"the forward argument {key!r}" if isinstance(key, str) else f"the positional forward argument {key}"
    return None


def _observation_mask(x: Tensor, mask: object) -> bool:
    """Whether ``mask`` may be an observation mask of ``x``, read entry by entry as an ``attention_mask``: a tensor of
    ``x``'s own shape, of 3 or more dimensions (values ``[N, T, C]``), but not a sequence's attention matrices
    ``[N, T, T]`` beside an input ``[N, T, C]`` whose ``C`` equals ``T`` by chance: every sample's mask triangular (a
    causal mask), symmetric (the pairs of real positions) or one row for every query (a key-padding mask), which an
    observation mask is not but by chance (all ones, or whole channels missing at every step and nothing else).

    Examples:
        >>> import torch
        >>> x, causal = torch.ones(2, 3, 3), torch.ones(3, 3).tril().expand(2, 3, 3)
        >>> _observation_mask(x, causal), _observation_mask(x, torch.tensor([[1, 0, 1], [1, 1, 0], [0, 1, 1]]).expand(2, 3, 3))
        (False, True)
    """
    if not isinstance(mask, Tensor) or x.dim() < 3 or mask.shape != x.shape:
        return False
    if x.dim() > 3 or x.shape[1] != x.shape[2]:
        return True
    m = mask != 0
    return not (bool((m == m.transpose(1, 2)).all()) or bool((m == m.tril()).all()) or bool((m == m.triu()).all())
                or bool((m == m[:, :1]).all()))  # a key-padding mask: one row of real positions for every query


#: the largest value an additive attention mask may hold at a left-out position: BERT's -10000.0, -1e9, -inf and
#: ``torch.finfo(dtype).min`` (Hugging Face's extended masks) are at or below it
ADDITIVE_PAD = -1e4


def mask_padding(attention_mask: Tensor) -> Tensor:
    """The positions an ``attention_mask`` leaves out, as booleans of its shape, read by one rule: a keep mask (``bool``,
    integers, or floats none of them negative: 1 at the real positions, 0 at the padding, Hugging Face's sense; soft
    weights such as 0.5 are real positions, as they were always read) is padding where it is 0; an additive float mask
    (0 to attend, ``-inf`` or a large negative number, at most ``-1e4``, to leave out: what
    ``nn.MultiheadAttention(attn_mask=...)`` and ``F.scaled_dot_product_attention`` add to the scores, a Graphormer's or
    an extended Hugging Face mask) where it is negative; a float mask all 0 is additive (no padding: a keep mask of no
    real position says nothing). Read as a keep mask, an additive mask's 0 took every real position for padding (their
    effects 0, never set) and its -1e9 every padded one for real. Raises ``ValueError`` for a float mask holding other
    negative values (a bias, 0 and -1) or NaN, which no rule can tell padding from.

    Examples:
        >>> import torch
        >>> mask_padding(torch.tensor([[1, 1, 0]])), mask_padding(torch.tensor([[0.0, 0.0, float("-inf")]]))
        (tensor([[False, False,  True]]), tensor([[False, False,  True]]))
        >>> mask_padding(torch.tensor([[0.0, -1e9]])), mask_padding(torch.zeros(1, 2))
        (tensor([[False,  True]]), tensor([[False, False]]))
        >>> mask_padding(torch.tensor([[1.0, 0.5, 0.0]]))  # soft weights: a keep mask
        tensor([[False, False,  True]])
        >>> mask_padding(torch.tensor([[0.0, -0.5]]))
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `attention_mask` to be a keep mask ...
    """
    att = attention_mask
    if att.dtype == torch.bool or not att.is_floating_point():
        return att == 0
    zero = att == 0
    if bool((att >= 0).all()) and not bool(zero.all()):  # 0/1 or soft weights (NaN is neither: refused below)
        return zero
    if bool((zero | (att <= ADDITIVE_PAD)).all()):
        return ~zero
    shown = att.flatten().unique()[:6].tolist()
    raise ValueError(
        "Expected argument `attention_mask` to be a keep mask (bool, or numbers none of them negative: 1, or a soft weight, "
        f"at the real positions, 0 at the padding) or an additive float mask (0 at the real positions, -inf or a number at most {ADDITIVE_PAD:g} at the "
        f"padding) but got dtype {att.dtype} with values {shown}: which positions are padding cannot be told; pass a keep "
        "mask as `attention_mask` (True at the real positions) and build what the model adds to its scores inside "
        "forward: `torch.zeros(m.shape, dtype=x.dtype).masked_fill(~m, float('-inf'))`")


def key_padding(attention_mask: Tensor, inputs: Tensor | Sequence[Tensor] | None = None) -> Tensor | None:
    """The keys an attention mask of one matrix per sample leaves out for every query, as a keep mask ``[N, K]``
    (``True`` at the real positions), or ``None`` for another shape or values no rule reads (:func:`mask_padding`'s
    ``ValueError``: a bias): a Hugging Face extended mask ``[N, 1, 1, K]`` or ``[N, 1, K, K]`` (additive, 0 beside
    ``torch.finfo(dtype).min``, or boolean, ``True`` to attend), one per head ``[N, H, 1 | K, K]``, or ``[N, K, K]``
    (BERT's 3-D form). A key is padding where its column is left out for every query (and head): the padding of a
    causal mask built with it too, whose own upper triangle leaves no column out for every query (the last query sees
    every real key); a causal or other pattern without padding has none. A boolean square mask under which a real query
    leaves its own key out is read in torch's sense, ``True`` = left out (``nn.MultiheadAttention``'s ``attn_mask``,
    ``torch.ones(T, T, dtype=torch.bool).triu(1)``), where every real query attends itself so (:func:`_own_key_left_out`);
    read in Hugging Face's, its causal mask's first key was padding in every sample. A boolean square mask whose rows
    are all alike in each sample (a key-padding mask expanded to ``[N, T, T]`` or ``[N, 1 | H, T, T]``) has no diagonal
    to tell its sense: it is read in the sense whose padding holds one value across ``inputs`` (``[N, T, ...]``: the pad
    id, zeros) where the other's does not, or the one that leaves some real position; else none is read, with a warning
    (:func:`_rows_alike_sense`). Read as ``[N, T]`` by
    :func:`padding_positions`, such a mask was not read at all: the padded positions were set, given effects of their
    own and counted in the means.

    Examples:
        >>> import torch
        >>> keep = torch.tensor([[True, True, False]])
        >>> key_padding(torch.zeros(1, 1, 1, 3).masked_fill(~keep[:, None, None], torch.finfo(torch.float).min))
        tensor([[ True,  True, False]])
        >>> causal = torch.ones(3, 3, dtype=torch.bool).tril()
        >>> key_padding((causal & keep[:, None])[:, None]), key_padding(causal.expand(1, 1, 3, 3))  # causal with padding, without
        (tensor([[ True,  True, False]]), tensor([[True, True, True]]))
        >>> key_padding(causal.logical_not().expand(1, 3, 3) | ~keep[:, None])  # torch's sense: True = left out
        tensor([[ True,  True, False]])
    """
    att = attention_mask
    if att.dim() not in (3, 4) or att.shape[-2] not in (1, att.shape[-1]) or att.is_complex():
        return None
    try:
        pad = mask_padding(att)
    except ValueError:  # a bias: which keys are padding cannot be told
        return None
    keys = ~pad.flatten(1, -2).all(1)
    if att.dtype == torch.bool and att.shape[-2] > 1 and _rows_alike(pad):
        return _rows_alike_sense(keys, inputs, att)  # a key-padding mask expanded: no diagonal tells its sense
    if att.dtype == torch.bool and att.shape[-2] > 1 and _own_key_left_out(pad, keys, empty=True):  # torch's sense,
        torch_keys = ~(~pad).flatten(1, -2).all(1)  # True = left out
        if not _own_key_left_out(~pad, torch_keys, empty=True):  # (nn.MultiheadAttention's attn_mask): read in Hugging
            return torch_keys  # Face's, its causal mask's first key was padding in every sample
        return None if _own_key_left_out(pad, keys) else keys  # Hugging Face's, a sample all padding
    return keys


def _rows_alike(mask: Tensor) -> bool:
    """Whether the rows of an attention mask ``[N, ..., Q, K]`` are all alike in each sample (over heads and queries):
    its first and last rows compared first, the full compare only where they agree (a causal mask's differ)."""
    rows = mask.flatten(1, -2)
    return bool((rows[:, 0] == rows[:, -1]).all()) and bool((rows == rows[:, :1]).all())


def _equal_entries(a: Tensor, b: Tensor) -> Tensor:
    """``a == b`` entry by entry, NaN equal to NaN."""
    same = a == b
    return same | (a.isnan() & b.isnan()) if a.is_floating_point() else same


#: the warning for a boolean square mask of rows all alike whose sense neither reading's padding tells
ROWS_ALIKE_SENSE = (
    "a boolean attention_mask {shape} whose rows are all alike in each sample (a key-padding mask expanded to [N, T, T] "
    "or [N, 1, T, T]) has no diagonal to tell its sense (True = attend, Hugging Face's, or True = left out, torch's), "
    "and the inputs' padding under neither reading alone holds one value (a pad id), so none of its keys is read as "
    "padding: the padded positions are set by the interventions and counted in the means; pass the padding as a keep "
    "mask `attention_mask` [N, T] (True at the real positions: `mask[:, 0, 0]` or `~mask[:, 0]` of torch's) and expand "
    "it inside forward")


def _rows_alike_sense(keys: Tensor, inputs: Tensor | Sequence[Tensor] | None, mask: Tensor | None = None
                      ) -> Tensor | None:
    """The keep mask ``[N, K]`` of a boolean square mask whose rows are all alike in each sample, ``keys`` its reading
    in Hugging Face's sense (``True`` = attend): that reading or torch's (``~keys``), the one whose padding leaves a
    real position where the other leaves none, else the one whose padding holds one value across ``inputs``
    (``[N, K, ...]``: the pad id, a zero row, NaN; ``inputs`` may be several tensors, the first that tells wins: an
    all-zero ``token_type_ids`` tells nothing) where the other's does not; ``None`` (warned, :data:`ROWS_ALIKE_SENSE`,
    naming the ``mask``'s shape, once per mask and its copies)
    where neither tells. Read by its absent diagonal, a Hugging Face mask with one sample all padding beside padded
    ones was read in torch's sense, and one of torch's padding every sample (``padding='max_length'``) in Hugging
    Face's: every real position read as padding.

    Examples:
        >>> import torch
        >>> keys = torch.tensor([[True, True, False], [True, False, False]])
        >>> ids = torch.tensor([[7, 9, 1], [8, 1, 1]])  # pad id 1
        >>> _rows_alike_sense(keys, ids), _rows_alike_sense(~keys, ids)  # Hugging Face's sense, torch's
        (tensor([[ True,  True, False],
                [ True, False, False]]), tensor([[ True,  True, False],
                [ True, False, False]]))
        >>> _rows_alike_sense(torch.ones(2, 3, dtype=torch.bool), None)  # torch's would leave no real position
        tensor([[True, True, True],
                [True, True, True]])
    """
    if not bool(keys.any()) or not bool((~keys).any()):  # one reading leaves no real position
        return keys if bool(keys.any()) else ~keys
    for held_by in (inputs,) if isinstance(inputs, Tensor) else inputs or ():
        if not isinstance(held_by, Tensor) or held_by.dim() < 2 or tuple(held_by.shape[:2]) != tuple(keys.shape):
            continue
        rows = held_by.detach().reshape(*keys.shape, -1).to(keys.device)

        def one_value(pad: Tensor, rows: Tensor = rows) -> bool:
            held = rows[pad]
            return bool(_equal_entries(held, held[:1]).all())  # NaN padding holds one value

        hf, torch_sense = one_value(~keys), one_value(keys)
        if hf != torch_sense:
            return keys if hf else ~keys
    run = _MASK_READS.get()
    if run is not None:  # once per run and mask (its memory), no hash of it on the host
        seen, warned = (_memory(mask) if mask is not None else None, tuple(keys.shape)), run.warned
    else:  # outside a run, once per mask (and its copies), however many reads of it calls make
        seen, warned = (tuple(keys.shape if mask is None else mask.shape), hash(keys.cpu().numpy().tobytes())), _SENSE_WARNED
    if seen not in warned:
        if len(warned) > 64:  # a long fit's masks: forget the old ones
            warned.clear()
        warned.add(seen)
        warnings.warn(ROWS_ALIKE_SENSE.format(shape=list(keys.shape if mask is None else mask.shape)), ProbeContentsWarning,
                      stacklevel=outside_package())
    return None


#: the masks :func:`_rows_alike_sense` has warned of outside a run (:func:`mask_reads`): their shapes and rows' hashes
_SENSE_WARNED: set[tuple] = set()

class _Reads:
    """One run's reads of attention masks (:func:`mask_reads`): ``keys``, where a mask's values lie
    (:func:`_memory`) -> the mask, its version counter then and its keep mask; ``warned``, the masks whose sense
    :func:`_rows_alike_sense` warned of."""

    __slots__ = ("keys", "warned")

    def __init__(self) -> None:
        self.keys: dict[tuple, tuple[Tensor, int, Tensor]] = {}
        self.warned: set[tuple] = set()


#: the open run's reads (:func:`mask_reads`); ``None`` outside one
_MASK_READS: ContextVar[_Reads | None] = ContextVar("lightning_causal_mask_reads", default=None)

#: the most masks a run keeps read (:func:`mask_reads`): the probe's; masks a run builds later are read as they come
_MASK_READS_KEPT = 8


@contextlib.contextmanager
def mask_reads() -> Iterator[None]:
    """Inside, an attention mask of one matrix per sample is read once (:func:`key_padding`: its keep mask and, of a
    boolean mask of rows all alike, its sense, a scan of a ``[16, 12, 256, 256]`` mask costing tens of ms), however
    many of the run's estimators and warnings read its padding, through whichever view or alias of it (an
    ``InputEffectAudit`` run read one five times); one whose sense is undecided is read again (another call's tensors
    may tell it) and warned of once (:data:`ROWS_ALIKE_SENSE`). The reads go with the block, so every run reads
    its masks afresh. Opened by every audit's ``run``
    (:func:`~lightning_causal.audits.logit_reads.judged_run`); a block inside another shares it.

    Examples:
        >>> import torch
        >>> mask = torch.tensor([[True, True, False]])[:, None, None].expand(1, 1, 3, 3)
        >>> with mask_reads():
        ...     first = _read_keys(mask, None)
        ...     first is _read_keys(mask, None)
        True
    """
    if _MASK_READS.get() is not None:
        yield
        return
    token = _MASK_READS.set(_Reads())
    try:
        yield
    finally:
        _MASK_READS.reset(token)


def _read_keys(att: Tensor, inputs: Tensor | Sequence[Tensor] | None, scans: dict | None = None) -> Tensor | None:
    """:func:`key_padding` of ``att`` beside ``inputs``, read once per call (``scans``, :func:`_scanned`: one sense per
    mask, told by the first of the call's tensors that tells, ``scans[_CANDIDATES]``) and once per run
    (:func:`mask_reads`: the first read's; not an inference tensor's, which keeps no version counter to tell a change in
    place: read as it comes)."""
    run = _MASK_READS.get()
    where = _memory(att) if run is not None and not att.is_inference() else None
    held = run.keys.get(where) if run is not None and where is not None else None
    if held is not None and held[0]._version == held[1]:  # the same memory, unchanged since it was read
        return held[2]
    key = ("key_padding", id(att))
    if scans is not None and key in scans:
        keys = scans[key]
    else:
        keys = key_padding(att, scans.get(_CANDIDATES, inputs) if scans is not None else inputs)
        if scans is not None:
            scans[key] = keys
    if run is not None and where is not None and keys is not None and len(run.keys) < _MASK_READS_KEPT:
        run.keys[where] = (att, att._version, keys)  # an undecided sense is read again: another call's tensors may tell it
    return keys


def _memory(t: Tensor) -> tuple | None:
    """Where ``t``'s values lie: its data's address, shape, strides, dtype and device (a view or an alias of a mask held
    by :func:`mask_reads`, ``mask.detach()``, a forward argument's own reference, reads the same values; the held mask
    keeps the address from any other tensor), or ``None`` where it has no address (a fake or meta tensor)."""
    try:
        ptr = t.data_ptr()
    except Exception:  # noqa: BLE001 - a tensor without storage is read as it comes
        return None
    return (ptr, tuple(t.shape), t.stride(), t.dtype, str(t.device)) if ptr else None


def _own_key_left_out(pad: Tensor, keys: Tensor, empty: bool = False) -> bool:
    """Whether the left-out entries ``pad`` of square attention masks (``[N, K, K]`` or ``[N, H, K, K]``) leave a real
    key (``keys``) out of its own query's keys (in every head), or with ``empty`` every key of a sample out for every
    query: no mask of Hugging Face's sense does the first (a real query attends itself, in a causal, sliding-window or
    bidirectional mask), one of torch's sense read in Hugging Face's does (its diagonal; all its keys where it leaves
    none out)."""
    own = pad.diagonal(dim1=-2, dim2=-1)
    own = own.all(1) if own.dim() == 3 else own
    return bool((own & keys).any()) or (empty and bool((~keys).all(1).any()))


def unread_attention_mask(x: Tensor, additional_forward_args: object, *, model: nn.Module | None = None) -> str | None:
    """The shape, in words, of an ``attention_mask`` of one matrix per sample over ``x``'s positions (``[N, K, K]``,
    ``[N, H, 1 | K, K]``, ``K`` the size of ``x``'s dimension 1) whose values no rule reads (:func:`key_padding`
    ``None``: a bias added to the scores, ALiBi's slopes or a relative-position bias beside the padding's ``-inf``),
    so that none of its keys is read as padding; ``None`` for any other argument. To be warned of: the padded
    positions are set by the interventions and counted in the means.

    Examples:
        >>> import torch
        >>> bias = -torch.arange(3.0).expand(2, 1, 3, 3)  # 0, -1, -2: a bias, no padding rule reads it
        >>> unread_attention_mask(torch.zeros(2, 3, 4), {"attention_mask": bias})
        '[2, 1, 3, 3]'
        >>> unread_attention_mask(torch.zeros(2, 3, 4), {"attention_mask": torch.zeros(2, 1, 1, 3)}) is None
        True
    """
    named = padding_arguments(model, additional_forward_args)
    att = named.get("attention_mask") if isinstance(named, Mapping) else None
    if (not isinstance(att, Tensor) or att.dim() not in (3, 4) or x.dim() < 2 or att.shape[0] != x.shape[0]
            or att.shape[-1] != x.shape[1] or att.shape[-2] not in (1, att.shape[-1]) or _observation_mask(x, att)
            or _read_keys(att, x) is not None):
        return None
    return str(list(att.shape))


def _attention_mask(x: Tensor, named: Mapping, scans: dict | None = None) -> object:
    """The ``attention_mask`` among ``named`` as read for ``x``: an attention mask of one matrix per sample (3-D or
    4-D) as its keys' keep mask ``[N, K]`` (:func:`key_padding`), unless it is an observation mask of ``x``'s shape
    (:func:`_observation_mask`); as it is otherwise. ``scans``: the call's scans (:func:`_scanned`), where the keep mask
    is kept, read once per call and per run (:func:`_read_keys`; a ``[16, 12, 256, 256]`` mask's read costs tens of
    ms)."""
    att = named.get("attention_mask")
    if isinstance(att, Tensor) and att.dim() in (3, 4) and not _observation_mask(x, att):
        keys = _read_keys(att, (x,) if scans is not None else x, scans)  # once per call and per run
        return att if keys is None else keys
    return att


#: the key in a call's scans of its candidate tensors (``[N, T, ...]``), which tell a rows-alike mask's sense
_CANDIDATES = "candidates"


def _padding_of(x: Tensor, named: Mapping, scans: dict | None = None) -> Tensor | None:
    """:func:`padding_positions` of ``x`` alone, from the named padding arguments ``named`` (``scans``: the call's
    scans, :func:`_scanned`)."""
    if x.dim() < 2:
        return None
    att = _attention_mask(x, named, scans)
    if isinstance(att, Tensor) and att.shape == x.shape[:2]:
        return mask_padding(att).to(x.device).view(*att.shape, *[1] * (x.dim() - 2))
    if _observation_mask(x, att):  # [N, T, C]: entry by entry
        return mask_padding(att).to(x.device)
    lengths = named.get("lengths")
    if not isinstance(lengths, Tensor) or lengths.shape != x.shape[:1] or lengths.is_floating_point() or lengths.dtype == torch.bool:
        return None
    axis = _time_axis(x, lengths, scans)
    steps = torch.arange(x.shape[axis], device=x.device)
    pad = steps.unsqueeze(0) >= lengths.to(x.device).unsqueeze(1)  # [N, T]
    shape = [x.shape[0]] + [1] * (x.dim() - 1)
    shape[axis] = x.shape[axis]
    return pad.view(shape)


def time_axis(x: Tensor, lengths: Tensor) -> int:
    """The axis of ``x`` whose steps ``lengths`` count: dimension 1 (``batch_first``, as
    ``pack_padded_sequence`` takes it), or the last of an input of 3 or more dimensions laid out channels
    first, ``[N, C, T]`` as ``Conv1d`` takes it (a waveform ``[N, 1, L]``, frames of mel bins ``[N, M, T]``,
    a spectrogram ``[N, 1, M, T]``), or another after dimension 1 (a video ``[N, C, T, H, W]`` as ``Conv3d`` takes
    it, log-mel frames ``[N, 1, T, M]``): where dimension 1 is shorter than the longest length, the later axis holding
    it whose steps from each length on hold one value (the padding), else the one as long as the longest length, else
    the last (of a 5-D input, dimension 2, the frames, wherever they hold the longest length and no other axis alone
    holds one pad value or is alone as long as the longest length: clips of 16 frames of 16 x 16 padded with noise or
    their last frame, where a volume ``[N, C, H, W, D]`` padded to its deepest keeps its depth; and where dimension 1
    holds it too, 16 bands over 8 frames, dimension 2 where it alone shows one pad value); where both dimension 1
    and the last hold it, the last where dimension 1 holds no one value after every
    length and the last does, or every length is the last dimension's size (full clips) and dimension 1 is longer.
    Read as dimension 1, the mel bins at and above a short clip's length were taken for padding: their effects 0 and
    never set.

    Examples:
        >>> import torch
        >>> time_axis(torch.zeros(2, 1, 8000), torch.tensor([8000, 5000])), time_axis(torch.zeros(2, 9, 4), torch.tensor([9, 5]))
        (2, 1)
        >>> x = torch.randn(2, 16, 40); x[1, :, 10:] = 0  # 16 bins of 40 frames, the second clip 10 frames long
        >>> time_axis(x, torch.tensor([40, 10])), time_axis(x.transpose(1, 2), torch.tensor([40, 10]))
        (2, 1)
        >>> x = torch.randn(2, 64, 50)  # two full clips of 50 frames, 64 bins, and the same laid out batch first
        >>> time_axis(x, torch.tensor([50, 50])), time_axis(x.transpose(1, 2), torch.tensor([50, 50]))
        (2, 1)
        >>> time_axis(torch.randn(2, 3, 8, 12, 12), torch.tensor([8, 8]))  # a video [N, C, T, H, W] of full clips
        2
        >>> time_axis(torch.randn(2, 1, 16, 16, 16), torch.tensor([12, 9]))  # noise-padded, the longest 12 of 16 frames
        2
        >>> time_axis(torch.randn(2, 1, 32, 32, 24), torch.tensor([24, 17]))  # a volume [N, C, H, W, D] of 24 slices
        4
    """
    return _time_axis(x, lengths)


def _scanned(x: Tensor, lengths: Tensor, axis: int, scans: dict | None) -> bool:
    """:func:`_filled_after`, kept in ``scans`` (one call's, keyed by the tensor's id and the axis, its tensors alive
    throughout), so that the call's other reads of ``x`` along ``axis`` do not scan it again (a waveform's scan
    costs milliseconds)."""
    if scans is None:
        return _filled_after(x, lengths, axis)
    key = (id(x), axis)
    if key not in scans:
        scans[key] = _filled_after(x, lengths, axis)
    return scans[key]


def _time_axis(x: Tensor, lengths: Tensor, scans: dict | None = None) -> int:
    """:func:`time_axis`, its scans kept in ``scans`` (:func:`_scanned`)."""
    last = x.dim() - 1
    if last < 2 or not lengths.numel():
        return 1
    longest = int(lengths.max())
    if x.shape[1] < longest:
        held = [a for a in range(2, last + 1) if x.shape[a] >= longest]  # the later axes that hold the longest length
        # the one whose padding holds one value after every length, else the one as long as the longest length (a
        # batch padded to it), else the last: a video laid out for Conv3d, [N, C, T, H, W], along dimension 2 (read
        # along its columns, a short clip's columns were padding in every frame, a full clip's past its length)
        shown = [a for a in held if _scanned(x, lengths, a, scans)]
        fit = [a for a in held if x.shape[a] == longest]
        # of a 5-D input, a video laid out for Conv3d, the frames (dimension 2) wherever they hold the longest length and
        # no other axis alone shows the pad or is alone as long as it: square frames of a clip's length (16 of 16 x 16),
        # padding of noise or of the last frame repeated, a probe whose longest clip is shorter than the frames, were
        # read along the columns; a volume laid out [N, C, H, W, D] (MONAI's) batched to its deepest keeps its depth
        frames = 2 if x.dim() == 5 and 2 in held else None
        if shown:
            return frames if frames in shown else shown[-1]
        if fit and (frames is None or len(fit) == 1):  # square frames as wide as the longest clip say nothing
            return fit[-1]
        return frames if frames is not None else last if last in held else 1
    # a video [N, C, T, H, W] of as many channels as its longest clip's frames or more (16 bands, 8 frames) whose frames
    # alone show one pad value: read along dimension 1, its channels from each length on were padding in every frame
    if (x.dim() == 5 and x.shape[2] >= longest and not _scanned(x, lengths, 1, scans) and _scanned(x, lengths, 2, scans)
            and not (x.shape[last] >= longest and _scanned(x, lengths, last, scans))):
        return 2
    if x.shape[last] < longest or _scanned(x, lengths, 1, scans):
        return 1
    # no pad value along dimension 1: the last where its padding holds one, or where no length falls short of it while
    # dimension 1 is longer than them all (a probe of full clips [N, 64 bins, 50 frames]: read as dimension 1, bins
    # 50-63 were padding in every clip), as a batch padded to its longest clip is
    return last if _scanned(x, lengths, last, scans) or x.shape[last] == int(lengths.min()) < x.shape[1] else 1


def step_positions(padding: Tensor | None) -> Tensor | None:
    """The ``[N, T]`` booleans of a padding (:func:`padding_positions`) along dimension 1, as hidden states
    ``[N, T, ...]`` follow it; ``None`` without padding or for one along another axis (a channels-first
    ``[N, C, T]`` input's frames, :func:`time_axis`), whose layers' outputs do not keep the steps on dimension 1.
    Of an observation mask read entry by entry (``[N, T, C]``), the steps where nothing is observed from some step to
    the end: the padding after each series' length, which its mask holds 0 in every channel; a real step where nothing
    was measured before later ones were (an hour of no measurement on a regular grid) is no padding: its hidden states
    carry the earlier observations.

    Examples:
        >>> import torch
        >>> step_positions(torch.tensor([[False, True]]).view(1, 2, 1)), step_positions(torch.zeros(1, 1, 5, dtype=torch.bool))
        (tensor([[False,  True]]), None)
        >>> step_positions(torch.tensor([[[False, True], [True, True]]]))  # entries unobserved: step 1 wholly
        tensor([[False,  True]])
        >>> step_positions(torch.tensor([[[False, True], [True, True], [False, True], [True, True]]]))  # step 1: a gap
        tensor([[False, False, False,  True]])
    """
    if padding is not None and padding.dim() > 2 and padding.shape[1] > 1 and padding.shape[2:].numel() > 1:
        # an observation mask [N, T, C] (padding_positions): the steps unobserved from there to the end
        return padding.flatten(2).all(2).flip(1).cummin(1).values.flip(1)
    if padding is None or padding.dim() < 2 or padding.shape[2:].numel() != 1:  # [N, T, 1, ...]; an empty probe too
        return None
    return padding.reshape(padding.shape[:2])


def _filled_after(x: Tensor, lengths: Tensor, axis: int) -> bool:
    """Whether some sample has steps at or after its length along ``axis`` and they all hold one value (a pad)."""
    steps = x.movedim(axis, 1)
    pad = torch.arange(steps.shape[1], device=x.device).unsqueeze(0) >= lengths.to(x.device).unsqueeze(1)
    padded = pad.any(1).nonzero()
    if not padded.numel():
        return False
    n = int(padded[0, 0])
    first = steps[n][pad[n]]  # the first padded sample's steps: most axes that are no time axis differ there already
    value = first.reshape(-1)[0]
    if not bool((first == value).all()):
        return False
    return bool((steps[pad] == value).all())  # [P, ...]: every padded step's values


def _argument_tensors(additional_forward_args: object, named: Mapping, n: int) -> list[Tensor]:
    """The forward arguments that are tensors of ``n`` rows and at least 2 dimensions (also those nested in an
    argument), other than the padding arguments themselves and those passed whole (:func:`whole_positions`: a weight
    that a probe cut to as many rows as it has passes whole): the tensors a padding argument may describe instead of
    the inputs."""
    values = list(additional_forward_args.values()) if isinstance(additional_forward_args, Mapping) else additional_forward_args
    own = [named.get(name) for name in _PADDING_NAMES]
    whole = whole_positions(additional_forward_args)  # places in tensor_leaves order, as ForwardArgs reads them
    return [v for i, v in enumerate(tensor_leaves(values))
            if i not in whole and v.dim() >= 2 and v.shape[0] == n and not any(v is o for o in own)]


def _described(tensors: Sequence[Tensor], named: Mapping, scans: dict | None = None) -> int | None:
    """Which of ``tensors`` (the inputs, then the tensors among the forward arguments) a padding
    argument describes: an ``attention_mask`` ``[N, T]`` a tensor of that shape ``[N, T, ...]``, token
    ids (integer) or a sequence of features (3-D or more) before a 2-D float table; ``lengths`` a
    tensor with at least ``max(lengths)`` steps along its time axis (:func:`time_axis`), one read along dimension 1 or
    whose padding holds one value before one read along another dimension without (an image beside token ids), and
    beside token ids or a sequence whose padding holds one value (their pad id, zeros) one whose padding does so before
    one whose does not (channels-first frames beside a transcript's ids, a context beside its query), 3-D before 2-D,
    then the longest.
    Ties: the first. ``None``: none fits. ``scans``: the call's scans (:func:`_scanned`)."""
    scans = {} if scans is None else scans
    scans.setdefault(_CANDIDATES, tuple(tensors))
    fits = [k for k, t in enumerate(tensors) if _padding_of(t, named, scans) is not None]
    if len(fits) <= 1:
        return fits[0] if fits else None
    atts = {k: _attention_mask(tensors[k], named, scans) for k in fits}
    shaped = [k for k in fits if isinstance(atts[k], Tensor) and tuple(tensors[k].shape[:2]) == tuple(atts[k].shape)]
    if shaped:
        return max(shaped, key=lambda k: (not tensors[k].is_floating_point() or tensors[k].dim() >= 3, -k))
    lengths = named.get("lengths")
    longest = int(lengths.max()) if isinstance(lengths, Tensor) and lengths.numel() else 0
    axes = {k: _time_axis(tensors[k], lengths, scans) if isinstance(lengths, Tensor) else 1 for k in fits}
    steps = {k: tensors[k].shape[axes[k]] for k in fits}
    # read along its last dimension, a tensor whose padding does not show it (one pad value after every length) comes
    # after one read along dimension 1: an image [N, 3, H, W] beside the token ids its lengths count keeps its columns;
    # beside token ids or a sequence (3-D or more) whose padding shows them (their pad id, zeros), every tensor whose
    # padding does not comes after: frames [N, 64 bins, 100] beside a transcript's ids keep their bins, a context
    # [N, 16, D] beside the zero-padded query the lengths count its steps (a 2-D float table shows them by chance, its
    # columns past each length zero: no evidence)
    filled = {k: _scanned(tensors[k], lengths, axes[k], scans) for k in fits} if isinstance(lengths, Tensor) else {}
    shows = any(v and (not tensors[k].is_floating_point() or tensors[k].dim() >= 3) for k, v in filled.items())
    shown = {k: (axes[k] == 1 and not shows) or filled.get(k, True) for k in fits}
    return max(fits, key=lambda k: (steps[k] >= longest, shown[k], tensors[k].dim() >= 3, steps[k], -k))


def input_padding(
    xs: tuple[Tensor, ...], additional_forward_args: object, *, model: nn.Module | None = None
) -> tuple[Tensor | None, ...] | None:
    """:func:`padding_positions` of each of several inputs ``xs``: the padding of the one input the
    argument describes, ``None`` for the others; ``None`` without padding. An ``attention_mask``
    ``[N, T]`` describes an input of that shape ``[N, T, ...]``, token ids (an integer input) first:
    of ``model(ids, meta)`` and ``model(meta, ids)`` the ids either way, whatever the other's width.
    ``lengths`` describe an input with at least ``max(lengths)`` steps along its time axis, one whose padding
    holds one value before one whose does not beside token ids or a sequence whose does, a sequence ``[N, T, F]`` before a 2-D
    one, then the longest: not a metadata table ``[N, M]`` beside it, whose column ``j`` would be read as padding in
    every sample shorter than ``j`` (:func:`_described`). Ties: the first input.

    Examples:
        >>> import torch
        >>> meta, ids = torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long)
        >>> input_padding((meta, ids), {"attention_mask": torch.tensor([[1, 1, 0], [1, 0, 0]])})[0] is None
        True
        >>> input_padding((torch.zeros(2, 3), torch.zeros(2, 6, 4)), {"lengths": torch.tensor([2, 6])})[1][..., 0]
        tensor([[False, False,  True,  True,  True,  True],
                [False, False, False, False, False, False]])
    """
    return named_padding(xs, additional_forward_args, padding_arguments(model, additional_forward_args, len(xs)))


def named_padding(xs: tuple[Tensor, ...], additional_forward_args: object, named: Mapping | None
                  ) -> tuple[Tensor | None, ...] | None:
    """:func:`input_padding` of the padding arguments ``named`` as :func:`padding_arguments` read them from
    ``additional_forward_args``, for a caller that reads them for more (which of them marks the padding)."""
    if not isinstance(named, Mapping):
        return None
    scans: dict = {}  # each tensor's time axis and padding read once
    chosen = _described((*xs, *_argument_tensors(additional_forward_args, named, xs[0].shape[0])), named, scans)
    if chosen is None or chosen >= len(xs):  # no input, or a forward argument (the ids beside an explained table)
        return None
    pad = _padding_of(xs[chosen], named, scans)
    return tuple(_sense_checked(x, pad, named, scans) if k == chosen else None for k, x in enumerate(xs))


def padded_steps(xs: tuple[Tensor, ...], additional_forward_args: object, *, model: nn.Module | None = None) -> Tensor | None:
    """The ``[N, T]`` padded steps (:func:`step_positions`) of the one input the padding arguments describe
    (:func:`input_padding`), which hidden states ``[N, T, ...]`` follow; ``None`` without padding or along another axis.
    Raises ``ValueError`` as :func:`mask_padding` does.

    Examples:
        >>> import torch
        >>> padded_steps((torch.zeros(2, 3, 4),), {"lengths": torch.tensor([2, 3])})
        tensor([[False, False,  True],
                [False, False, False]])
    """
    pads = input_padding(xs, additional_forward_args, model=model)
    return step_positions(next((p for p in pads or () if p is not None), None))


def unpadded_masks(xs: tuple[Tensor, ...], masks: tuple[Tensor, ...], pads: tuple[Tensor | None, ...] | None,
                   g: int) -> tuple[Tensor, ...]:
    """``masks`` with the padded positions of each input (:func:`input_padding`) moved to id ``g``,
    in no group: an intervention never sets them and no quantile pools them."""
    if pads is None:
        return masks
    return tuple(m if p is None else m.expand(x.shape).masked_fill(p.expand(x.shape), g) for x, m, p in zip(xs, masks, pads))


def position_mean(h: Tensor, real: Tensor | None) -> Tensor:
    """The mean over samples of activations ``h`` ``[N, ...]`` per element, ``[1, ...]``; for a
    padded output ``[N, T, ...]`` over the input's positions (``real``: ``[N, T]`` booleans, ``True``
    at a real position, e.g. ``~padding_positions(...)``) the mean at position ``t`` counts only the
    samples whose ``t`` is real: ``m[t] = Σ_n r[n,t] h[n,t] / Σ_n r[n,t]``. A padded position's
    hidden state is never read by the output but moves with the real tokens (and with the pad id
    there), so counted it mixed garbage into the value every real token at ``t`` is set to. A
    position no sample has real (padding only) gets the mean over all real tokens: no real
    position reads it. Other outputs (``real`` ``None``, pooled ``[N, D]``, a shape whose first two
    dimensions are not ``real``'s) take the plain mean ``h.mean(0)``.

    Examples:
        >>> h = torch.tensor([[[1.0], [4.0], [9.0]], [[3.0], [99.0], [99.0]]])  # [N=2, T=3, D=1]
        >>> real = torch.tensor([[True, True, False], [True, False, False]])
        >>> position_mean(h, real).flatten()  # t=1: sample 0 only; t=2: no real sample, (1 + 4 + 3) / 3
        tensor([2.0000, 4.0000, 2.6667])
        >>> position_mean(h, None).flatten()
        tensor([ 2.0000, 51.5000, 54.0000])
    """
    if real is None or h.dim() < 3 or tuple(h.shape[:2]) != tuple(real.shape) or bool(real.all()):
        return h.mean(0, keepdim=True)
    w = real.to(h.device).view(*real.shape, *[1] * (h.dim() - 2))
    zero = torch.zeros((), dtype=h.dtype, device=h.device)
    total = torch.where(w, h, zero).sum(0, keepdim=True)  # [1, T, ...]
    count = w.sum(0, keepdim=True)  # [1, T, 1, ...]
    tokens = int(count.sum())
    if tokens == 0:  # nothing real at all: no position is read
        return h.mean(0, keepdim=True)
    pooled = total.sum(1, keepdim=True) / tokens  # the mean over every real token
    return torch.where(count > 0, total / count.clamp_min(1).to(h.dtype), pooled)


def sample_rows(t: Tensor, s: Tensor) -> Tensor:
    """Rows ``s`` of a per-sample tensor, or the tensor itself when it is shared (first dim 1).

    Args:
        t: a per-sample tensor ``[N, ...]`` or a shared one ``[1, ...]``.
        s: ``[R]`` sample indices.

    Examples:
        >>> import torch
        >>> sample_rows(torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([2, 0]))
        tensor([[3.],
                [1.]])
        >>> sample_rows(torch.zeros(1, 3), torch.tensor([2, 0])).shape
        torch.Size([1, 3])
    """
    return t if t.shape[0] == 1 else rows_of(t, s)


def ablate_groups(x: Tensor, mask: Tensor, s: Tensor, groups: Tensor, *, values: Tensor) -> Tensor:
    """``x[s]`` with the elements of group ``groups[r]`` of row ``r`` replaced by ``values``
    (broadcastable to the rows: a scalar, ``[1 or R, ...]``).

    Args:
        x: an input ``[N, ...]``.
        mask: its feature mask ``[1 or N, ...]`` (integer group ids).
        s: ``[R]`` the sample of each row.
        groups: ``[R]`` the group ablated in each row.
        values: the replacement values, broadcastable to the ``[R, ...]`` rows.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[1.0, 2.0, 3.0]])
        >>> mask = torch.tensor([[0, 0, 1]])
        >>> ablate_groups(x, mask, torch.tensor([0, 0]), torch.tensor([0, 1]), values=torch.tensor([[9.0], [7.0]]))  # a value per row
        tensor([[9., 9., 3.],
                [1., 2., 7.]])
    """
    selected = sample_rows(mask, s) == groups.view([-1] + [1] * (x.dim() - 1))
    return torch.where(selected, values, rows_of(x, s))


def changed_groups(
    xs: tuple[Tensor, ...], masks: tuple[Tensor, ...], bases: tuple[Tensor, ...], num_groups: int,
    padding: tuple[Tensor | None, ...] | None = None,
) -> Tensor:
    """``[N, G]`` booleans: does ``do(x_g := b)`` (:func:`ablate_groups`) change any element of sample ``n``?

    Where it does not, the intervened row is the clean sample bit for bit (every element of the group already holds
    its baseline, ``-0.0`` and ``0.0`` told apart; or the group holds no element of the sample), so a deterministic
    model that computes each sample from its own values gives the clean outputs there and the row's effect is exactly
    0: the row engines (``input_effects``, ``layer_causal_map``) leave such rows unrun. Elements with the id
    ``num_groups`` (kept special tokens, padding given that id by :func:`unpadded_masks`) and the ``padding``
    positions of each input (booleans broadcastable to it, or ``None``) count in no group. O(N·D) memory.

    Args:
        xs: the inputs ``[N, ...]``.
        masks: their feature masks (integer group ids, ``[1 or N, ...]``).
        bases: their baselines, as :func:`check_baselines` returns them (``[1 or N, ...]``: per sample too).
        num_groups: ``G``; ids ``>= G`` belong to no group.
        padding: per input, the positions that never change, or ``None``.

    Examples:
        >>> x = torch.tensor([[0.0, 2.0, 0.0], [-0.0, 0.0, 3.0]])
        >>> changed_groups((x,), (torch.tensor([[0, 1, 2]]),), (torch.zeros(1, 1),), 3)
        tensor([[False,  True, False],
                [ True, False,  True]])
    """
    differ = [differs(x, b) for x, b in zip(xs, bases)]
    for k, pad in enumerate(padding or ()):
        if pad is not None:
            differ[k] = differ[k] & ~pad
    return group_counts(xs, masks, num_groups + 1, tuple(differ))[:, :num_groups] > 0


def differs(x: Tensor, value: Tensor) -> Tensor:
    """Booleans shaped like ``x``: does setting each element of ``x`` to ``value`` (broadcastable to it) change its
    bits? ``-0.0`` and ``0.0`` are told apart (equal as numbers, but the sign reaches a model that reads it: ``1 / x``,
    ``atan2``), in each part of a complex value too (``angle()`` of ``complex(-1, -0.0)`` is -π, of ``complex(-1, 0.0)``
    π); a NaN differs from everything. The one test of "changes nothing" of the row engines
    (:func:`changed_groups`; the hidden-unit rows, :func:`~lightning_causal.causal.effects.unit_rows.moving_rows`).

    Args:
        x: the clean values.
        value: the values the intervention sets, broadcastable to ``x``.

    Examples:
        >>> differs(torch.tensor([0.0, -0.0, 1.0]), torch.tensor(0.0))
        tensor([False,  True,  True])
    """
    d = x != value
    if x.is_complex():  # each part's sign: complex(-1, -0.0) == complex(-1, 0.0), but angle() gives -π and π
        value = value.to(x.dtype).resolve_conj()
        parts = torch.signbit(torch.view_as_real(x.resolve_conj())) != torch.signbit(torch.view_as_real(value))
        d = d | parts.any(-1)
    elif x.is_floating_point():
        d = d | (torch.signbit(x) != torch.signbit(value))
    return d


def _unit_dim(h: Tensor, units: Tensor, unit_dim: int) -> int:
    """``unit_dim`` as a non-negative dimension of ``h`` other than the batch's (5 of a 2-D ``h`` wrapped to 1),
    ``units`` checked to hold one unit per row (shapes only: no device sync)."""
    if not -h.dim() <= unit_dim < h.dim():
        raise ValueError(f"Expected argument `unit_dim` to be a dimension of `h` {list(h.shape)} (-{h.dim()} to {h.dim() - 1}) "
                         f"but got {unit_dim}")
    dim = unit_dim % h.dim()
    if dim == 0:
        raise ValueError("Expected argument `unit_dim` not to be the batch dimension 0")
    if units.numel() != h.shape[0]:  # replace_units: a view error naming neither; replace_units_: one unit broadcast to every row
        raise ValueError(f"Expected argument `units` to hold one unit per row of `h` ({h.shape[0]}) but got {list(units.shape)}")
    return dim


def replace_units(h: Tensor, units: Tensor, values: Tensor, unit_dim: int = 1, *, unit_size: int = 1) -> Tensor:
    """``h`` with unit ``units[r]`` of row ``r`` replaced by ``values`` (broadcastable to ``h``).

    Unit ``u`` is the slice ``[u * unit_size, (u + 1) * unit_size)`` of dimension ``unit_dim``: a
    channel or a neuron (``unit_size`` 1) or an attention head (``unit_size`` = head dimension).

    Args:
        h: a layer's output rows ``[R, ...]``.
        units: ``[R]`` the unit replaced in each row.
        values: the replacement values, broadcastable to ``h``.
        unit_dim: the dimension that holds the units (not 0).
        unit_size: positions per unit along ``unit_dim`` (1, or a head's dimension).

    Examples:
        >>> import torch
        >>> replace_units(torch.ones(2, 4), torch.tensor([0, 3]), torch.tensor(0.0))
        tensor([[0., 1., 1., 1.],
                [1., 1., 1., 0.]])
        >>> replace_units(torch.ones(2, 4), torch.tensor([0, 1]), torch.tensor(0.0), unit_size=2)
        tensor([[0., 0., 1., 1.],
                [1., 1., 0., 0.]])
    """
    dim = _unit_dim(h, units, unit_dim)
    pos = torch.arange(h.shape[dim], device=h.device) // unit_size  # unit of each position
    onehot = pos.unsqueeze(0) == units.view(-1, 1)  # [R, size of dim]
    shape = [h.shape[0]] + [1] * (h.dim() - 1)
    shape[dim] = h.shape[dim]
    return torch.where(onehot.view(shape), values, h)


def replace_units_(h: Tensor, units: Tensor, values: Tensor, unit_dim: int = 1, *, unit_size: int = 1) -> Tensor:
    """:func:`replace_units` written into ``h`` (which the caller owns: a fresh copy), one unit per
    row: only the replaced slices are touched, not every element. Returns ``h``.

    Examples:
        >>> h = torch.zeros(2, 4)
        >>> replace_units_(h, torch.tensor([1, 3]), torch.tensor(5.0))
        tensor([[0., 5., 0., 0.],
                [0., 0., 0., 5.]])
    """
    dim = _unit_dim(h, units, unit_dim)
    r = torch.arange(h.shape[0], device=h.device).unsqueeze(1)
    columns = units.to(h.device).view(-1, 1) * unit_size + torch.arange(unit_size, device=h.device)  # [R, size]
    target = h.movedim(dim, 1)  # a view: writing it writes h
    source = values.to(h.dtype).expand_as(h).movedim(dim, 1)
    target[r, columns] = source[r, columns]
    return h


def reference_mask(attention_mask: Tensor | None, ref: Tensor) -> Tensor | None:
    """``[M, T]`` booleans (``True``: a real token) from the ``attention_mask`` of a reference
    ``ref [M, T, ...]`` (:class:`~lightning_causal.causal.engine.interventions.MeanOf`), checked by name: a keep mask
    of 0 and 1 (soft weights refused) or an additive float mask, read as :func:`mask_padding` reads the model's."""
    if attention_mask is None:
        return None
    if not isinstance(attention_mask, Tensor):
        raise TypeError(f"Expected argument `attention_mask` to be None or a tensor [M, T] but got {type(attention_mask).__name__}")
    if ref.dim() < 3 or attention_mask.shape != ref.shape[:2]:
        raise ValueError(
            f"Expected argument `attention_mask` of shape [M, T] = {list(ref.shape[:2])} (the first two dimensions of a "
            f"reference [M, T, ...] of sequences) but got {list(attention_mask.shape)} for a reference of shape {list(ref.shape)}")
    if attention_mask.is_complex() or ((not attention_mask.is_floating_point() or bool((attention_mask >= 0).all()))
                                       and not bool(((attention_mask == 0) | (attention_mask == 1)).all())):
        raise ValueError(f"Expected argument `attention_mask` to hold 0 (padding) and 1 (a real token) only, or to be an "
                         f"additive float mask (0 at a real token, -inf or a number at most {ADDITIVE_PAD:g} at the padding), "
                         f"but got dtype {attention_mask.dtype} with values {attention_mask.unique()[:5].tolist()}")
    real = ~mask_padding(attention_mask)  # a keep mask's 1s, an additive mask's 0s: the model's own mask, as it reads it
    if not bool(real.any()):
        raise ValueError("Expected argument `attention_mask` to mark at least one real token (a 1) but it is all 0")
    return real
