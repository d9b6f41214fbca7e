"""Categories of the warnings that describe the samples an estimator was given (the probe's contents).

Such a warning says what the samples hold, not what the caller configured: too few distinct rows to compare
layers by, one sample of each explained class, samples repeated or without spread, groups constant over the
samples or already equal to the baseline, layers these samples neither move nor route through, a correlation
the samples cannot determine (``GaussianCopula``), one-hot blocks seen in them or an output constant over inputs
drawn from them (``SobolAudit``), a gradient exactly 0 at them (``CaptumBaseline``; features at a flat point,
``input_effects(method='attribution')``), a class that Neural Cleanse
flags among two, or a class every sample is predicted as, whose reversed trigger had no sample to move
(``neural_cleanse``, ``BackdoorAudit``). A probe of two rows (an
audit's dry run) trips most of them whatever the model, so callers that run on such a probe filter them by
category, never by their wording, which may change (``SobolAudit`` and ``CausalGraphAudit`` check theirs on the
whole probe at the dry run instead)::

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProbeContentsWarning)
        ...

Every category is a ``UserWarning``, so filters and ``pytest.warns(UserWarning)`` of those catch them too.
The subcategories are for callers that say one of them in their own words and keep the others.
"""

__all__ = ["ConstantGroupsWarning", "ProbeContentsWarning", "RepeatedSamplesWarning"]


class ProbeContentsWarning(UserWarning):
    """A warning about what the given samples hold (too few, one a class, repeated, constant, at the baseline,
    layers they do not move, a gradient 0 at them), which a small probe trips whatever the model."""


class RepeatedSamplesWarning(ProbeContentsWarning):
    """A warning that samples repeat others (a bootstrap resample repeats them by design)."""


class ConstantGroupsWarning(ProbeContentsWarning):
    """A warning that feature groups take one value over the samples (an image's blank border)."""
