"""The Captum methods by name: defaults, options and the parsing of ``"NoiseTunnel(<name>)"`` and
``(name, options)`` pairs into a :class:`MethodSpec`.

Captum methods not taken, and what to use instead: :data:`NOT_TAKEN`.

Defaults are chosen for an audit that runs every few epochs: IntegratedGradients,
LayerIntegratedGradients and LayerConductance use 16 Gauss-Legendre steps, GradientShap 16 samples, ShapleyValueSampling 8
permutations, NoiseTunnel 8 noisy copies (accuracy against more steps: benchmarks/RESULTS.md);
unset batching knobs follow the engine's cache-friendly chunk size.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from captum.attr import (
    Deconvolution,
    DeepLift,
    FeatureAblation,
    GradientShap,
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    LayerActivation,
    LayerConductance,
    LayerFeatureAblation,
    LayerGradientXActivation,
    LayerIntegratedGradients,
    Saliency,
    ShapleyValueSampling,
)

from lightning_causal.causal.engine.checks import check_choice, check_float, check_int, check_type

__all__ = ["METHOD_NAMES", "INPUT_LAYER_METHOD_NAMES", "LAYER_METHOD_NAMES", "LayerMethod", "MethodLike", "MethodSpec", "NOT_TAKEN", "check_option_values",
           "resolve_method"]

MethodLike = str | type | tuple[str | type, Mapping[str, Any]]  # a Captum class stands for its name


@dataclass(frozen=True)
class _Method:
    cls: type
    defaults: dict[str, Any] = field(default_factory=dict)
    baselines: bool = False  # accepts `baselines`
    grouped: bool = False  # uses `feature_mask`: every element of a group carries the group's value
    randomised: bool = False
    layer: bool = False  # attributes the output of an input layer (word embeddings): `input_layer=`


METHOD_TABLE: dict[str, _Method] = {
    "IntegratedGradients": _Method(
        IntegratedGradients, {"n_steps": 16, "method": "gausslegendre", "internal_batch_size": None}, baselines=True
    ),
    "Saliency": _Method(Saliency, {"abs": True}),
    "DeepLift": _Method(DeepLift, {}, baselines=True),
    "GradientShap": _Method(GradientShap, {"n_samples": 16, "stdevs": 0.0}, baselines=True, randomised=True),
    "InputXGradient": _Method(InputXGradient, {}),
    # ReLU-rule gradients: Captum overrides the backward pass of every nn.ReLU module (not of F.relu)
    "GuidedBackprop": _Method(GuidedBackprop, {}),
    "Deconvolution": _Method(Deconvolution, {}),
    "FeatureAblation": _Method(FeatureAblation, {"perturbations_per_eval": None}, baselines=True, grouped=True),
    "ShapleyValueSampling": _Method(
        ShapleyValueSampling, {"n_samples": 8, "perturbations_per_eval": None}, baselines=True, grouped=True,
        randomised=True,
    ),
    # layer methods on the output of an input layer (token ids -> embeddings), baselines are token ids
    "LayerIntegratedGradients": _Method(
        LayerIntegratedGradients, {"n_steps": 16, "method": "gausslegendre", "internal_batch_size": None}, baselines=True,
        layer=True,
    ),
    "LayerGradientXActivation": _Method(LayerGradientXActivation, {}, layer=True),
    "LayerFeatureAblation": _Method(LayerFeatureAblation, {"perturbations_per_eval": None}, baselines=True, grouped=True,
                                    layer=True),
}
TUNNEL_DEFAULTS: dict[str, Any] = {"nt_type": "smoothgrad", "nt_samples": 8, "nt_samples_batch_size": None, "stdevs": None}
LAYER_METHOD_TABLE: dict[str, tuple[type, dict[str, Any], str]] = {
    "LayerConductance": (LayerConductance, {"n_steps": 16, "method": "gausslegendre", "internal_batch_size": None}, "sum"),
    "LayerActivation": (LayerActivation, {}, "mean"),
    # of a hidden layer here (its units), of the input layer (token positions) in METHOD_TABLE
    "LayerIntegratedGradients": (
        LayerIntegratedGradients, {"n_steps": 16, "method": "gausslegendre", "internal_batch_size": None}, "sum"
    ),
    "LayerGradientXActivation": (LayerGradientXActivation, {}, "sum"),
}
#: Captum methods these functions do not take, and what to use instead (said in the unknown-name error).
NOT_TAKEN: dict[str, str] = {
    "Occlusion": "its windows of one stride are FeatureAblation of patches (CaptumBaseline(('FeatureAblation',), "
    "patch_size=p), or feature_mask= of window ids: the same numbers as Occlusion with sliding_window_shapes = strides); "
    "overlapping windows give no feature groups that the causal effects could share",
    "DeepLiftShap": "it runs every sample against every baseline in one pass (N x B rows, no batching); use GradientShap "
    "(expected gradients over the baseline and the probe, batched) or DeepLift",
    "KernelShap": "Captum fits it with scikit-learn, no dependency of this package; ShapleyValueSampling estimates the "
    "same Shapley values of the groups, by permutations",
    "Lime": "Captum fits it with scikit-learn, no dependency of this package; ShapleyValueSampling or FeatureAblation "
    "attribute the same groups",
    "FeaturePermutation": "it shuffles a feature across the batch, an effect of the probe's distribution rather than of a "
    "baseline; use FeatureAblation (the causal effect's own perturbation) or SobolAudit (variance-based)",
    "GuidedGradCam": "it upsamples a layer's map to the input; use GuidedBackprop on the input, or "
    "layer_attribute / CaptumBaseline(layers=[...]) on the layer",
    "LayerGradCam": "for a hidden layer's units use layer_attribute / CaptumBaseline(layers=[...], "
    "settings=CompareSettings(layer_method=...))",
    "LRP": "its rules refuse many module types; use DeepLift (a rescale rule that takes any module)",
    "NeuronConductance": "one neuron's attribution to the inputs is not compared; for a layer's units use layer_attribute "
    "/ CaptumBaseline(layers=[...])",
    "NeuronIntegratedGradients": "one neuron's attribution to the inputs is not compared; for a layer's units use "
    "layer_attribute / CaptumBaseline(layers=[...])",
}

#: Captum's approximation methods of the integrated methods (``method=`` of IntegratedGradients).
APPROXIMATION_METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")
NOISE_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")
_COUNTS = ("n_steps", "n_samples", "nt_samples")  # positive ints
_BATCHES = ("internal_batch_size", "perturbations_per_eval", "nt_samples_batch_size")  # positive ints or None: sized for you


def check_option_values(label: str, options: Mapping[str, Any]) -> None:
    """Refuse an option value Captum would take badly: a count or batch size that is not a positive int
    (``n_steps=0`` and ``nt_type='bogus'`` reached Captum's ``assert``, which vanishes under ``python -O``;
    ``ShapleyValueSampling`` with ``n_samples=0`` returned NaN), a negative ``stdevs``, an unknown
    ``method``/``nt_type`` or a non-bool ``abs``. ``baselines`` are checked with the inputs.

    Args:
        label: the method, for the message.
        options: the method's options (keys already known to be its own).

    Raises:
        ValueError: a value out of range, naming the option, the method, the value and what is allowed.
        TypeError: ``abs`` not a bool.
    """
    for key, value in options.items():
        try:
            _check_option(f"{key}` of method `{label}", key, value)
        except (ValueError, TypeError) as err:  # "Expected option `n_steps` of method `IntegratedGradients` to be ..."
            raise type(err)(str(err).replace("Expected argument `", "Expected option `", 1)) from None


def _check_option(name: str, key: str, value: Any) -> None:
    if key in _COUNTS:
        check_int(name, value, minimum=1)
    elif key in _BATCHES:
        check_int(name, value, minimum=1, none_ok=True)
    elif key == "stdevs":
        check_float(name, value, minimum=0.0, none_ok=True)
    elif key == "method":
        check_choice(name, value, APPROXIMATION_METHODS)
    elif key == "nt_type":
        check_choice(name, value, NOISE_TYPES)
    elif key == "abs":
        check_type(name, value, bool)


#: Names accepted by :func:`attribute` (each also as ``"NoiseTunnel(<name>)"``).
METHOD_NAMES: tuple[str, ...] = tuple(n for n, m in METHOD_TABLE.items() if not m.layer)
#: Layer methods on the output of an input layer (``input_layer=``, e.g. word embeddings of token ids).
INPUT_LAYER_METHOD_NAMES: tuple[str, ...] = tuple(n for n, m in METHOD_TABLE.items() if m.layer)
#: Names accepted by :func:`layer_attribute`.
LAYER_METHOD_NAMES: tuple[str, ...] = tuple(LAYER_METHOD_TABLE)
#: The type of those names (a test keeps it equal to LAYER_METHOD_NAMES).
LayerMethod = Literal["LayerConductance", "LayerActivation", "LayerIntegratedGradients", "LayerGradientXActivation"]


@dataclass(frozen=True)
class MethodSpec:
    """A resolved method: ``name`` (Captum class name), ``noise_tunnel``, merged ``options``.

    ``label`` names the method in maps, scalars and TensorBoard tags (``"NoiseTunnel-Saliency"``:
    TensorBoard tags allow no parentheses).

    Args:
        name: the Captum class name.
        noise_tunnel: whether the method runs inside ``NoiseTunnel``.
        options: the method's keyword options, merged over its defaults.
    """

    name: str
    noise_tunnel: bool
    options: dict[str, Any]

    @property
    def label(self) -> str:
        return f"NoiseTunnel-{self.name}" if self.noise_tunnel else self.name

    @property
    def randomised(self) -> bool:
        return self.noise_tunnel or METHOD_TABLE[self.name].randomised

    @property
    def grouped(self) -> bool:
        """True when the attribution gives each element of a feature group the group's value."""
        return METHOD_TABLE[self.name].grouped

    @property
    def layer(self) -> bool:
        """True for a layer method on the output of an input layer (``input_layer=``)."""
        return METHOD_TABLE[self.name].layer


def unknown_name_error(kind: str, value: str, valid: list[str]) -> ValueError:
    """The error of an unknown method name: the valid names, and for a Captum method not taken why and what
    to use instead (:data:`NOT_TAKEN`), else the closest valid name."""
    bare = _parse_name(value)[0] if isinstance(value, str) else value
    if bare in NOT_TAKEN or bare in LAYER_METHOD_TABLE and bare not in valid:
        why = NOT_TAKEN.get(bare) or ("a hidden layer's method: layer_attribute(model, x, layer, method) or "
                                      "CaptumBaseline(layers=[...], settings=CompareSettings(layer_method=...))")
        return ValueError(f"Expected argument `{kind}` to be one of {valid} but got {value!r}: {bare} is not taken here; {why}")
    close = difflib.get_close_matches(value, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(f"Expected argument `{kind}` to be one of {valid} but got {value!r}.{hint}")


def _parse_name(name: str) -> tuple[str, bool]:
    for prefix, suffix in (("NoiseTunnel(", ")"), ("NoiseTunnel-", "")):
        if name.startswith(prefix) and name.endswith(suffix):
            return name[len(prefix) : len(name) - len(suffix)], True
    return name, False


def _captum_name(method: Any) -> Any:
    """A Captum attribution class (``captum.attr.IntegratedGradients``) is taken by its name; an instance
    of one is refused, saying why: the method is built around the model under audit, each time."""
    if isinstance(method, type) and method.__module__.startswith("captum.attr"):
        return method.__name__
    if type(method).__module__.startswith("captum.attr"):
        cls = type(method).__name__
        raise TypeError(f"Expected argument `method` to be a name or a (name, options) pair but got an object of class {cls}; "
                        f"pass its name, {cls!r}: the method is built around the model it explains, at each call "
                        "(constructor options such as multiply_by_inputs are not taken)")
    return method


def resolve_method(method: MethodLike | MethodSpec, options: Mapping[str, Any] | None = None) -> MethodSpec:
    """Parse a method name or ``(name, options)`` pair and merge ``options`` over the defaults.

    Args:
        method: a name (``"IntegratedGradients"``, ``"NoiseTunnel(Saliency)"``; a Captum class such as
            ``captum.attr.IntegratedGradients`` stands for its name), a ``(name, options)`` pair, or a
            :class:`MethodSpec`.
        options: options merged over the method's own and its defaults; ``None``: none.

    Raises:
        ValueError: unknown name (the valid ones are listed), unknown option, or an option value out of
            range (:func:`check_option_values`: counts and batch sizes positive ints, ``stdevs`` >= 0,
            ``method``/``nt_type`` among Captum's).
        TypeError: ``method`` is neither a string nor a ``(str, dict)`` pair, or ``abs`` is no bool.

    Examples:
        >>> spec = resolve_method(("NoiseTunnel(IntegratedGradients)", {"n_steps": 8, "nt_samples": 4}))
        >>> spec.label, spec.options["n_steps"], spec.options["nt_samples"]
        ('NoiseTunnel-IntegratedGradients', 8, 4)
    """
    method = _captum_name(method)
    if isinstance(method, tuple) and len(method) == 2 and isinstance(method[1], Mapping):
        method = (_captum_name(method[0]), method[1])
    if isinstance(method, MethodSpec):
        name, tunnel, given = method.name, method.noise_tunnel, dict(method.options)
    elif isinstance(method, str):
        (name, tunnel), given = _parse_name(method), {}
    elif isinstance(method, tuple) and len(method) == 2 and isinstance(method[0], str) and isinstance(method[1], Mapping):
        (name, tunnel), given = _parse_name(method[0]), dict(method[1])
    else:
        raise TypeError(f"Expected argument `method` to be a name or a (name, options) pair but got {method!r}")
    valid = list(METHOD_NAMES) + [f"NoiseTunnel({n})" for n in METHOD_NAMES] + list(INPUT_LAYER_METHOD_NAMES)
    if name not in METHOD_TABLE:
        raise unknown_name_error("method", method if isinstance(method, str) else name, valid)
    if tunnel and METHOD_TABLE[name].layer:
        raise ValueError(f"Expected a method without NoiseTunnel for the input-layer method {name!r} (token ids take no noise)")
    given.update(options or {})
    defaults = dict(METHOD_TABLE[name].defaults)
    if METHOD_TABLE[name].baselines:
        defaults["baselines"] = None
    if tunnel:
        defaults.update(TUNNEL_DEFAULTS)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(
            f"Expected options of method {name!r}{' in NoiseTunnel' if tunnel else ''} among {sorted(defaults)} "
            f"but got unknown {unknown}"
        )
    defaults.update(given)
    check_option_values(f"NoiseTunnel({name})" if tunnel else name, given)
    return MethodSpec(name, tunnel, defaults)
