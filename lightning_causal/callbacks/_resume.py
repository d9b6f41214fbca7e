"""What :class:`~lightning_causal.callbacks.audit.CausalAuditCallback` restores when a fit resumes: the
checkpoint's state of an audit callback no callback of the trainer claims (a fit resumed with a changed
set of audits: the ``state_key`` names them), and the warning about a resumed fit's other probe."""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from typing import Any

from lightning.pytorch import Callback

from lightning_causal._user_warnings import warn_at_users_line
from lightning_causal.audits.base import Probe

__all__ = ["probe_summary", "unclaimed_audit_state", "warn_other_probe"]


def probe_summary(probe: Probe, origin: str) -> dict[str, Any]:
    """What a checkpoint keeps of the probe its audits explained: samples, shape of one sample, source."""
    return {"samples": len(probe), "shape": list(probe.first.shape[1:]), "source": origin}


def warn_other_probe(before: dict[str, Any] | None, now: dict[str, Any]) -> None:
    """A fit resumed with another probe (a changed ``probe_size``, other data) than the checkpoint's
    (``before``, :func:`probe_summary`): its first audits' drift, and the carried states (a causal graph's
    edges gained and lost), would compare audits of different samples; a warning says so."""
    if before is not None and before != now:
        warn_at_users_line(f"CausalAuditCallback resumes with another probe ({now}) than the checkpoint's audits ({before}): "
                           "the first resumed audit's drift compares audits of different samples; keep `probe` and "
                           "`probe_size` to compare the model alone")


def unclaimed_audit_state(
    state_key: str, prefix: str, names: Sequence[str], callbacks: Sequence[Callback], states: Mapping[Any, Any],
) -> tuple[dict[str, Any], str] | None:
    """The state a callback of ``state_key`` (``prefix``: its class's keys begin so) and audits ``names``
    restores from a checkpoint's callback ``states`` that Lightning does not restore to it, with the
    warning that names what it restores: one audit callback's state that no callback of the trainer
    (``callbacks``) claims, holding audits of these names. ``None``: Lightning restores this key's state,
    or there is none of this callback's (several unclaimed states: a warning says the audits start fresh)."""
    if state_key in states:
        return None  # Lightning restores it (load_state_dict)
    claimed = {cb.state_key for cb in callbacks}
    unclaimed = [k for k in states if isinstance(k, str) and k.startswith(prefix) and k not in claimed]
    if not unclaimed:
        return None
    if len(unclaimed) > 1:
        warn_at_users_line(f"CausalAuditCallback with audits {list(names)} restores no state from the "
                           f"checkpoint: it holds several audit callbacks' states ({unclaimed}) and none of this key; "
                           "its audits start fresh (no drift at the first audit)")
        return None
    state = states[unclaimed[0]]
    try:  # "CausalAuditCallback{'audits': [...]}" (see state_key)
        old = [str(a) for a in ast.literal_eval(unclaimed[0][len(prefix) - 1:])["audits"]]
    except (ValueError, SyntaxError, KeyError, TypeError):
        old = list(dict.fromkeys([*state.get("previous_vectors", {}), *state.get("audit_states", {})]))
    mine = list(names)
    if not set(mine) & set(old):
        return None  # another callback's audits (one removed, this one new): nothing of it is this callback's
    return state, (f"CausalAuditCallback: the checkpoint's audit callback state {unclaimed[0]!r} is restored for the "
                   f"audits {[a for a in mine if a in old]} (schedule, drift, audit states); "
                   f"start fresh: {[a for a in mine if a not in old]}; dropped: {[a for a in old if a not in mine]}")
