"""The input of a module as an intervention site: ``"<module>:input"``.

Some units exist only as a module's input. Hugging Face ``transformers`` 5 combines the attention
heads in functional code, so no module returns the heads side by side; they are the input of the
output projection (Llama's ``self_attn.o_proj``, ViT's ``attention.o_proj``; PyTorch's own
``nn.MultiheadAttention``'s ``out_proj``, which its forward then calls as a module while the site
exists: :mod:`~lightning_causal.causal.engine.torch_attention`). Naming
``"model.layers.0.self_attn.o_proj:input"`` makes that input a site of its own for the duration of
a call: an ``nn.Identity`` (:class:`InputSite`) is attached to the module as a child, and a
forward pre-hook passes the module's first input through it (its first positional argument, or,
if it is called with keywords only, the keyword that names ``forward``'s first parameter). Every path of the
engine (hooks, capture, the prefix cache) then sees an ordinary module whose output is the input.
Both are removed on exit, also on errors: the model is left as it was.

Examples:
    >>> from lightning_causal.causal.engine.interventions import resolve_module
    >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    >>> with input_sites(model, ["2:input"]):
    ...     resolve_module(model, "2:input")
    InputSite(consumer=Linear)
    >>> hasattr(model[2], CHILD), len(model[2]._forward_pre_hooks)
    (False, 0)
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Sequence

import torch  # noqa: F401 (the examples use it)
from torch import Tensor, nn

from lightning_causal.causal.engine.live_values import rebuild
from lightning_causal.causal.engine.torch_attention import out_proj_called, owning_attention

__all__ = ["CHILD", "OUTPUT_CHILD", "SUFFIX", "InputSite", "attached_site", "check_site", "input_parent", "input_sites",
           "output_site"]

#: The suffix that names a module's input: ``"<module>:input"``.
SUFFIX = ":input"
#: The name of the child :class:`InputSite` while it is attached.
CHILD = "lc_input_site"
#: The name of the child that :func:`output_site` attaches.
OUTPUT_CHILD = "lc_output_site"


class InputSite(nn.Identity):
    """The first input of ``consumer`` as a module of its own (it returns it as it is).
    The consumer is kept outside the module tree (not a child), so that the model's modules and
    parameters are listed once; the unit layout of the input is read from it (a linear layer takes
    its features last).

    Args:
        consumer: the module whose first positional input the site stands for.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> fc = nn.Linear(3, 2)
        >>> site = InputSite(fc)
        >>> site, site(torch.ones(1, 3)), list(site.children())  # the input as it is; fc not a child
        (InputSite(consumer=Linear), tensor([[1., 1., 1.]]), [])
    """

    def __init__(self, consumer: nn.Module) -> None:
        super().__init__()
        self._consumer = (consumer,)  # a tuple: not registered as a submodule
        self.routed = False  # the consumer's input has gone through the site; its own forward is running

    def __call__(self, *args: object, **kwargs: object) -> object:
        """The site's call, with its hooks, when the consumer's pre-hook routes its input through it;
        the value as it is, and no hooks, when the consumer's own forward calls it after that (a
        container that runs its children in turn, ``for m in self: x = m(x)``, meets the site as its
        last child, on its output: not the input the site stands for)."""
        if self.routed:
            return args[0] if args else next(iter(kwargs.values()))
        return super().__call__(*args, **kwargs)

    @property
    def consumer(self) -> nn.Module:
        return self._consumer[0]

    def extra_repr(self) -> str:
        return f"consumer={type(self.consumer).__name__}"


def input_parent(name: str) -> str | None:
    """The module name of an input site ``"<module>:input"``, else ``None``.

    Examples:
        >>> input_parent("layers.0.o_proj:input"), input_parent("layers.0.o_proj")
        ('layers.0.o_proj', None)
    """
    return name[: -len(SUFFIX)] if isinstance(name, str) and name.endswith(SUFFIX) else None


def check_site(model: nn.Module, name: str) -> None:
    """Validate a site name before any call attaches it: a module of ``model``, or
    ``"<module>:input"`` of one (``ValueError`` with close matches otherwise)."""
    from lightning_causal.causal.engine.interventions import resolve_module

    resolve_module(model, input_parent(name) or name)


def attached_site(owner: nn.Module, name: str) -> InputSite:
    """The :class:`InputSite` attached to ``owner`` for the site ``name`` (inside :func:`input_sites`)."""
    site = getattr(owner, CHILD, None)
    if not isinstance(site, InputSite):
        raise ValueError(
            f"Expected the input site {name!r} to be attached, but it is not: an input site exists during the calls "
            "that take layer names (unit_effects, causal_graph, capture, intervene and the audits built on them). Enter "
            "`input_sites(model, [name])` to use it elsewhere")
    return site


@contextlib.contextmanager
def input_sites(model: nn.Module, names: Sequence[str]) -> Iterator[None]:
    """Attach an :class:`InputSite` to every module named ``"<module>:input"`` in ``names`` for
    the duration of the ``with`` block (other names are left alone; a site already attached by an
    enclosing block is reused). The site is the module's first input: its first positional argument,
    or, in a call with keywords only, the keyword named as ``forward``'s first parameter.

    Raises:
        ValueError: an unknown module; a module called without that input.

    Examples:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> with input_sites(model, ["2:input"]):
        ...     print([name for name, _ in model.named_modules()])
        ['', '0', '1', '2', '2.lc_input_site']
        >>> [name for name, _ in model.named_modules()]
        ['', '0', '1', '2']
    """
    from lightning_causal.causal.engine.interventions import resolve_module

    attached = []
    with contextlib.ExitStack() as routes:
        try:
            for name in names:
                parent = input_parent(name)
                if parent is None:
                    continue
                owner = resolve_module(model, parent)
                if isinstance(getattr(owner, CHILD, None), InputSite):
                    continue
                if hasattr(owner, CHILD):
                    raise ValueError(f"Expected module {parent!r} to have no attribute {CHILD!r} (the input site's name)")
                site = InputSite(owner)
                owner.add_module(CHILD, site)
                attached.append((owner, owner.register_forward_pre_hook(_route(name), with_kwargs=True)))
                attached.append((owner, owner.register_forward_hook(_unrouted, always_call=True)))
                attention = owning_attention(model, parent)
                if attention is not None:  # nn.MultiheadAttention's out_proj: called as a module while the site exists
                    routes.enter_context(out_proj_called(attention))
            yield
        finally:
            for owner, handle in attached:
                handle.remove()
                if isinstance(getattr(owner, CHILD, None), InputSite):
                    delattr(owner, CHILD)


def first_parameter(module: nn.Module) -> str | None:
    """The name of the first parameter of ``module.forward`` (``None`` if it takes only ``*args``/``**kwargs``)."""
    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return None
    first = next(iter(params), None)
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return first.name if first is not None and first.kind in kinds else None


def _route(name: str):
    def pre(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        site = getattr(module, CHILD)
        site.routed = False  # this call's input goes through the site (an earlier call may have raised)
        if args:
            out = (site(args[0]), *args[1:]), kwargs
        else:
            key = first_parameter(module)
            if key is None or key not in kwargs:
                allowed = "" if key is None else f" or as the keyword {key!r} (forward's first parameter)"
                raise ValueError(
                    f"Expected module {input_parent(name)!r} to be called with its input (the site {name!r}) as its first "
                    f"positional argument{allowed}, but it was called with keyword arguments {sorted(kwargs)} only")
            out = args, {**kwargs, key: site(kwargs[key])}
        site.routed = True  # until the module's call ends (_unrouted)
        return out

    return pre


def _unrouted(module: nn.Module, _args: object, _output: object) -> None:
    site = getattr(module, CHILD, None)
    if isinstance(site, InputSite):
        site.routed = False


@contextlib.contextmanager
def output_site(module: nn.Module) -> Iterator[nn.Module]:
    """A module whose output is ``module``'s tensor, for tools that hook a layer and need a tensor
    (Captum's layer methods): for the ``with`` block an ``nn.Identity`` is attached to ``module``
    as a child, and a forward hook passes its output through it (element 0 of a tuple or list,
    e.g. an LSTM's ``(out, (h, c))``, the rest kept) as a view of its own: a gradient of the site reads the
    module's output alone, not other readers of the same tensor (an ``nn.Identity`` returns its input, which a
    bypass or an SAE's error term reads too). Both are removed on exit, also on errors.

    Examples:
        >>> lstm = nn.LSTM(2, 3, batch_first=True)
        >>> with output_site(lstm) as site:
        ...     seen = []
        ...     handle = site.register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
        ...     _ = lstm(torch.zeros(1, 4, 2)); handle.remove()
        >>> seen, hasattr(lstm, OUTPUT_CHILD), len(lstm._forward_hooks)
        ([torch.Size([1, 4, 3])], False, 0)
    """
    if hasattr(module, OUTPUT_CHILD):
        raise ValueError(f"Expected module {type(module).__name__} to have no attribute {OUTPUT_CHILD!r} (the output site's name)")
    site = nn.Identity()

    def route(_m: nn.Module, _args: tuple, out: object) -> object:
        # a view: a tensor of its own, read only where the module's output is (an nn.Identity returns its input, which
        # other layers may read too, and a gradient of that tensor would sum theirs: an SAE's error term cancelled it)
        if isinstance(out, (tuple, list)) and out and isinstance(out[0], Tensor):
            return rebuild(out, (site(out[0].view_as(out[0])), *out[1:]))
        return site(out.view_as(out)) if isinstance(out, Tensor) else None

    module.add_module(OUTPUT_CHILD, site)
    handle = module.register_forward_hook(route)
    try:
        yield site
    finally:
        handle.remove()
        delattr(module, OUTPUT_CHILD)
