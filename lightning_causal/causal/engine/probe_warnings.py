"""Categories of the warnings that describe the samples an estimator was given (the probe's contents).

Such a warning says what the samples hold, not what the caller configured: too few distinct rows to compare
layers by, one sample of each explained class, samples repeated, groups constant over the samples or already
equal to the baseline, layers these samples neither move nor route through. A probe of two rows (an audit's
dry run) trips most of them whatever the model, so callers that run on such a probe filter them by category,
never by their wording, which may change::

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProbeContentsWarning)
        ...

Every category is a ``UserWarning``, so filters and ``pytest.warns(UserWarning)`` of those catch them too.
The subcategories are for callers that say one of them in their own words and keep the others.
"""

__all__ = ["ConstantGroupsWarning", "ProbeContentsWarning", "RepeatedSamplesWarning"]


class ProbeContentsWarning(UserWarning):
    """A warning about what the given samples hold (too few, one a class, repeated, constant, at the baseline,
    layers they do not move), which a small probe trips whatever the model."""


class RepeatedSamplesWarning(ProbeContentsWarning):
    """A warning that samples repeat others (a bootstrap resample repeats them by design)."""


class ConstantGroupsWarning(ProbeContentsWarning):
    """A warning that feature groups take one value over the samples (an image's blank border)."""
