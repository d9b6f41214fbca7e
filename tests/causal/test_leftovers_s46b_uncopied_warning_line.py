"""The warning that an audit's passes wrote into a helper object past the copy budget (kept_attributes._warn_uncopied)
pointed into the package (stacklevel=3: audit_mode's exit in state.py); it now names the user's line, the ``with``
(user_frame.outside_package, as the package's other warnings)."""

import warnings

import torch

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.state import audit_mode
from tests.causal.test_mends_s45c_helper_past_budget import _Net, _ShadowList, small_budget  # noqa: F401


def test_the_uncopied_helper_warning_names_the_users_line(small_budget: None) -> None:  # noqa: F811
    model, x = _Net(_ShadowList()).eval(), torch.randn(3, 4)
    with audit_mode(model):
        Forward(model)(x)  # unwritten: not copied from now on
    model.write = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with audit_mode(model):
            Forward(model)(x)
    found = [w for w in caught if "helper object" in str(w.message)]
    assert len(found) == 1
    assert found[0].filename == __file__, found[0].filename
